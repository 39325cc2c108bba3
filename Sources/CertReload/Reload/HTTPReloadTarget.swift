/// Calls any HTTP API that makes a server reload: one request, success by status code.
public struct HTTPReloadTarget: BlockingReloadTarget {
    public var url: String
    public var method: String
    public var headers: [String: String]
    public var body: String?
    public var token: SecretSource?
    /// Statuses that mean success; empty means any 2xx.
    public var expectStatus: [Int]
    public var trust: EndpointTrust
    public var connectTimeout: Double = 10

    private let endpoint: HTTPEndpoint
    private let path: String

    public init(
        url: String, method: String = "POST", headers: [String: String] = [:], body: String? = nil,
        token: SecretSource? = nil, expectStatus: [Int] = [], trust: EndpointTrust = .system
    ) throws(ReloadError) {
        self.url = url
        self.method = method.isEmpty ? "POST" : method.uppercased()
        self.headers = headers
        self.body = body
        self.token = token
        self.expectStatus = expectStatus
        self.trust = trust
        if url.hasPrefix("unix:") {
            endpoint = try HTTPEndpoint(url)
            path = "/"
        } else {
            _ = try HTTPEndpoint(url)  // validates scheme and refuses credentials in the URL
            endpoint = try HTTPEndpoint(HTTPClient.origin(url))
            path = HTTPClient.pathStart(url).map { String(url[$0...]) } ?? "/"
        }
        guard self.method.allSatisfy({ $0.isLetter }) else {
            throw ReloadError(.reloadFailed, "method '\(method)' is not an HTTP method", fix: "use e.g. POST, PUT or GET")
        }
    }

    public var summary: String { "HTTP \(method) \(HTTPEndpoint.redact(endpoint.url(path)))" }

    /// Header names whose values are treated as secrets in messages.
    static func isSensitive(_ name: String) -> Bool {
        let lower = name.lowercased()
        return ["auth", "token", "key", "cookie", "secret", "password"].contains { lower.contains($0) }
    }

    public func reloadBlocking(context: ReloadContext) throws(ReloadError) -> String {
        var authorization: HTTPRequest.Authorization?
        if let token {
            authorization = .bearer(token: try Secrets.read(token, credentialsDirectory: context.credentialsDirectory))
        }
        var request = HTTPRequest(
            method: method, endpoint: endpoint, path: path,
            headers: headers.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) },
            body: body.map { Array($0.utf8) }, authorization: authorization,
            connectTimeout: min(connectTimeout, context.timeout), timeout: context.timeout, trust: trust)
        request.secrets = headers.filter { Self.isSensitive($0.key) }.map(\.value)
        return try answer(HTTPClient(context: context).send(request), to: request)
    }

    /// Success by status code (the fuzz target FuzzJSON feeds it).
    func answer(_ response: HTTPResponse, to request: HTTPRequest) throws(ReloadError) -> String {
        let expected = expectStatus.isEmpty ? response.isSuccess : expectStatus.contains(response.status)
        guard expected else {
            let wanted = expectStatus.isEmpty ? "2xx" : expectStatus.map(String.init).joined(separator: " or ")
            var error = ReloadError.httpStatus(
                response, to: request, server: "the server at \(endpoint)",
                unauthorizedFix: token == nil ? "configure token-file with a token the API accepts" : "check that the token in token-file is valid and allowed to reload")
            error.message += " (expected \(wanted))"
            throw error
        }
        return "\(summary) answered \(response.status)"
    }
}

/// Tells Stalwart to reload its TLS certificates: JMAP `x:Action/set` creating
/// `ReloadTlsCertificates` (0.16 and later), or `GET /api/reload/certificate` (up to 0.15).
///
/// With `api = auto` it tries JMAP first and falls back to REST only when the server does
/// not know that method (404 on /jmap/, `unknownMethod`, `unknownCapability`); an answer
/// that refuses the credentials never falls back.
public struct StalwartReloadTarget: BlockingReloadTarget {
    public var endpoint: HTTPEndpoint
    public var api: ReloadConfiguration.StalwartAPI
    public var token: SecretSource?
    public var username: String?
    public var password: SecretSource?
    public var caFile: String?
    public var connectTimeout: Double = 10

    public init(
        url: String, api: ReloadConfiguration.StalwartAPI = .auto, token: SecretSource? = nil,
        username: String? = nil, password: SecretSource? = nil, caFile: String? = nil
    ) throws(ReloadError) {
        self.endpoint = try HTTPEndpoint(url)
        self.api = api
        self.token = token
        self.username = username
        self.password = password
        self.caFile = caFile
    }

    static let jmapBody = #"{"using":["urn:ietf:params:jmap:core","urn:stalwart:jmap"],"methodCalls":[["x:Action/set",{"create":{"r1":{"@type":"ReloadTlsCertificates"}}},"c1"]]}"#

    static let jmapUnauthorizedFix =
        "give the API key (token-file) the permissions sysActionCreate and actionReloadTlsCertificates, "
        + "or use an administrator's username and password-file"
    static let restUnauthorizedFix =
        "Stalwart 0.15's /api/reload/ needs an administrator: use an administrator's API key (token-file) "
        + "or username and password-file"

    public var summary: String {
        let kind: String
        switch api {
        case .auto: kind = "JMAP, else REST"
        case .jmap: kind = "JMAP"
        case .rest: kind = "REST"
        }
        return "Stalwart (\(kind)) at \(endpoint)"
    }

    public func reloadBlocking(context: ReloadContext) throws(ReloadError) -> String {
        let authorization = try credentials(context)
        let client = HTTPClient(context: context)
        let started = MonotonicClock.now()
        func remaining() -> Double { max(0.001, context.timeout - (MonotonicClock.now() - started)) }

        switch api {
        case .rest:
            return try reloadREST(client, authorization, timeout: remaining())
        case .jmap:
            switch try reloadJMAP(client, authorization, timeout: remaining()) {
            case .reloaded(let line): return line
            case .notSupported(let why):
                throw ReloadError(
                    .reloadFailed, "\(endpoint) does not offer the JMAP reload (\(why))",
                    fix: "for Stalwart 0.15 or older set api = \"rest\" (or \"auto\")")
            }
        case .auto:
            switch try reloadJMAP(client, authorization, timeout: remaining()) {
            case .reloaded(let line): return line
            case .notSupported(let why):
                context.logger.info("Stalwart has no JMAP reload, trying REST", metadata: ["target": "\(endpoint)", "reason": "\(why)"])
                return try reloadREST(client, authorization, timeout: remaining())
            }
        }
    }

    private func credentials(_ context: ReloadContext) throws(ReloadError) -> HTTPRequest.Authorization? {
        if let token {
            return .bearer(token: try Secrets.read(token, credentialsDirectory: context.credentialsDirectory))
        }
        if let username {
            guard let password else {
                throw ReloadError(.reloadFailed, "Stalwart target has a username but no password-file",
                                  fix: "add password-file (or use token-file with an API key)")
            }
            return .basic(username: username, password: try Secrets.read(password, credentialsDirectory: context.credentialsDirectory))
        }
        return nil
    }

    enum JMAPOutcome {
        case reloaded(String)
        case notSupported(String)
    }

    private func request(_ method: String, _ path: String, body: [UInt8]?, _ authorization: HTTPRequest.Authorization?, timeout: Double) -> HTTPRequest {
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        return HTTPRequest(
            method: method, endpoint: endpoint, path: path, headers: headers, body: body,
            authorization: authorization, connectTimeout: min(connectTimeout, timeout), timeout: timeout, caFile: caFile)
    }

    func reloadJMAP(_ client: HTTPClient, _ authorization: HTTPRequest.Authorization?, timeout: Double) throws(ReloadError) -> JMAPOutcome {
        let request = request("POST", "/jmap/", body: Array(Self.jmapBody.utf8), authorization, timeout: timeout)
        let response = try client.send(request)
        let redactor = request.redactor
        let server = "Stalwart at \(endpoint)"
        if response.status == 404 || response.status == 405 {
            return .notSupported("\(request.summary) answered \(response.status)")
        }
        if response.status == 400, let type = response.json?[member: "type"]?.stringValue,
           type.hasSuffix("unknownCapability") || type.hasSuffix("unknownMethod") {
            return .notSupported("JMAP \(JMAPName.short(type))")
        }
        guard response.isSuccess else {
            throw ReloadError.httpStatus(response, to: request, server: server, unauthorizedFix: Self.jmapUnauthorizedFix)
        }
        guard let json = response.json, let call = json[member: "methodResponses"]?[element: 0],
              let name = call[element: 0]?.stringValue, let arguments = call[element: 1] else {
            throw ReloadError(.reloadFailed, "\(server) answered \(request.summary) with something that is not a JMAP response: \(redactor.excerpt(response.text, limit: 200))")
        }
        if name == "error" {
            let type = arguments[member: "type"]?.stringValue ?? "unknown"
            let description = arguments[member: "description"].map { ": " + redactor.excerpt($0.displayText) } ?? ""
            if type == "unknownMethod" || type == "unknownCapability" {
                return .notSupported("JMAP \(type)")
            }
            if type == "forbidden" {
                throw ReloadError(.reloadUnauthorized, "\(server) refused x:Action/set: forbidden\(description)", fix: Self.jmapUnauthorizedFix)
            }
            throw ReloadError(.reloadFailed, "\(server) answered x:Action/set with the JMAP error \(type)\(description)")
        }
        if arguments[member: "created"]?[member: "r1"] != nil {
            return .reloaded("Stalwart at \(endpoint) reloaded its TLS certificates (JMAP)")
        }
        if let failure = arguments[member: "notCreated"]?[member: "r1"] {
            let type = failure[member: "type"]?.stringValue ?? "unknown"
            let description = failure[member: "description"].map { ": " + redactor.excerpt($0.displayText) } ?? ""
            if type == "forbidden" {
                throw ReloadError(.reloadUnauthorized, "\(server) refused to reload its TLS certificates: forbidden\(description)",
                                  fix: Self.jmapUnauthorizedFix)
            }
            throw ReloadError(
                .reloadFailed, "\(server) did not reload its TLS certificates: \(type)\(description)",
                fix: "run `certreload check` on the lineage and read Stalwart's log; the certificate it names was dropped")
        }
        throw ReloadError(.reloadFailed, "\(server) answered x:Action/set without created.r1 or notCreated.r1: \(redactor.excerpt(response.text, limit: 200))")
    }

    func reloadREST(_ client: HTTPClient, _ authorization: HTTPRequest.Authorization?, timeout: Double) throws(ReloadError) -> String {
        let request = request("GET", "/api/reload/certificate", body: nil, authorization, timeout: timeout)
        let response = try client.send(request)
        let redactor = request.redactor
        let server = "Stalwart at \(endpoint)"
        guard response.isSuccess else {
            throw ReloadError.httpStatus(response, to: request, server: server, unauthorizedFix: Self.restUnauthorizedFix)
        }
        // 0.15 answers 200 even when a certificate failed: the errors object tells.
        guard let json = response.json, let data = json[member: "data"] else {
            if let error = response.json?[member: "error"] {
                throw ReloadError(.reloadFailed, "\(server) answered \(request.summary) with an error: \(redactor.excerpt(error.displayText))")
            }
            throw ReloadError(.reloadFailed, "\(server) answered \(request.summary) without a data object: \(redactor.excerpt(response.text, limit: 200))")
        }
        let errors = Self.entries(data[member: "errors"], redactor)
        if !errors.isEmpty {
            throw ReloadError(
                .reloadFailed, "\(server) reported \(errors.count) error(s) reloading certificates: \(errors.joined(separator: "; "))",
                fix: "run `certreload check` on the lineage and read Stalwart's log; a failed certificate is not served")
        }
        let warnings = Self.entries(data[member: "warnings"], redactor)
        let tail = warnings.isEmpty ? "" : "; warnings: \(warnings.joined(separator: "; "))"
        return "Stalwart at \(endpoint) reloaded its TLS certificates (REST)\(tail)"
    }

    /// "name: text" for each member of an errors/warnings object (or each element of an array).
    static func entries(_ value: JSON?, _ redactor: Redactor) -> [String] {
        switch value {
        case .object(let pairs)?: return pairs.map { "\($0.0): \(redactor.excerpt($0.1.displayText, limit: 200))" }
        case .array(let values)?: return values.map { redactor.excerpt($0.displayText, limit: 200) }
        case .string(let text)? where !text.isEmpty: return [redactor.excerpt(text, limit: 200)]
        default: return []
        }
    }
}

enum JMAPName {
    /// "urn:ietf:params:jmap:error:unknownCapability" → "unknownCapability".
    static func short(_ type: String) -> String {
        type.split(separator: ":").last.map(String.init) ?? type
    }
}

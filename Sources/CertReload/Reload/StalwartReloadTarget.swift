/// Tells Stalwart to reload its TLS certificates: JMAP `x:Action/set` creating
/// `ReloadTlsCertificates` (0.16 and 1.0), or `GET /api/reload/certificate` (0.15).
///
/// With `api = auto` it tries JMAP first and falls back to REST when the answer is what 0.15
/// gives there: 404/405, a 400 `notRequest` for the unknown `urn:stalwart:jmap` capability
/// (Basic credentials), or a 401 (0.15 refuses API keys on `/jmap/`); a 401 from REST as well
/// is then final. A 0.15 API key (`api_…`) goes straight to REST, a 0.16 one (`API_…`) only
/// to JMAP.
public struct StalwartReloadTarget: BlockingReloadTarget {
    public var endpoint: HTTPEndpoint
    public var api: ReloadConfiguration.StalwartAPI
    public var token: SecretSource?
    public var username: String?
    public var password: SecretSource?
    public var trust: EndpointTrust
    public var connectTimeout: Double = 10

    public init(
        url: String, api: ReloadConfiguration.StalwartAPI = .auto, token: SecretSource? = nil,
        username: String? = nil, password: SecretSource? = nil, trust: EndpointTrust = .system
    ) throws(ReloadError) {
        self.endpoint = try HTTPEndpoint(url)
        self.api = api
        self.token = token
        self.username = username
        self.password = password
        self.trust = trust
    }

    static let jmapBody = #"{"using":["urn:ietf:params:jmap:core","urn:stalwart:jmap"],"methodCalls":[["x:Action/set",{"create":{"r1":{"@type":"ReloadTlsCertificates"}}},"c1"]]}"#

    static let jmapUnauthorizedFix =
        "give the API key (token-file) the permissions sysActionCreate and actionReloadTlsCertificates, "
        + "or use an administrator's username and password-file"
    static let restUnauthorizedFix =
        "Stalwart 0.15's /api/reload/ needs the permission settings-reload (an administrator has it): use such an "
        + "account's username and password-file, or its API key as api_<base64 of name:secret> in token-file"
    /// What 0.16 / 1.0 serve after a certificate failed (crates/common/src/cache/reload.rs and
    /// network/tls.rs: the map is rebuilt without it).
    static let jmapServesNow =
        "Stalwart 0.16/1.0 rebuilt its certificate map without that certificate object: names it covered now get "
        + "another certificate that covers them, else the default certificate, else any certificate, and a generated "
        + "self-signed one only when none is left"
    /// What 0.15 serves after a certificate failed (crates/common/src/manager/reload.rs: only
    /// certificates that parse are added to a copy of the current map).
    static let restServesNow =
        "Stalwart 0.15 keeps serving the certificate it had loaded before for those names (a reload only adds "
        + "certificates that load)"

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
        let credentials = try StalwartCredentials.load(
            token: token, username: username, password: password, credentialsDirectory: context.credentialsDirectory)
        let authorization = credentials?.authorization
        let client = HTTPClient(context: context)
        let started = MonotonicClock.now()
        func remaining() -> Double { max(0.001, context.timeout - (MonotonicClock.now() - started)) }

        switch (api, credentials) {
        case (.jmap, .legacyAPIKey?):
            throw ReloadError(
                .stalwartCredentialShape,
                "token-file holds a Stalwart 0.15 API key (api_…), which Stalwart never accepts on /jmap/",
                fix: "for 0.15 set api = \"rest\" (or \"auto\"); for 0.16/1.0 create an API key with x:ApiKey/set (API_…)")
        case (.rest, .apiKey?):
            throw ReloadError(
                .stalwartCredentialShape,
                "token-file holds a Stalwart 0.16/1.0 API key (API_…), and those versions have no REST reload (/api/reload/ is gone)",
                fix: "set api = \"jmap\" (or \"auto\")")
        case (.rest, _), (.auto, .legacyAPIKey?):
            return try reloadREST(client, authorization, timeout: remaining())
        case (.jmap, _):
            switch try reloadJMAP(client, authorization, timeout: remaining()) {
            case .reloaded(let line): return line
            case .refused(let error): throw error
            case .notSupported(let why):
                throw ReloadError(
                    .reloadFailed, "\(endpoint) does not offer the JMAP reload (\(why))",
                    fix: "for Stalwart 0.15 set api = \"rest\" (or \"auto\")")
            }
        case (.auto, _):
            switch try reloadJMAP(client, authorization, timeout: remaining()) {
            case .reloaded(let line): return line
            case .refused(let error):
                // 0.15 answers 401 on /jmap/ to what it would take on /api/; a 0.16 API key has
                // nothing to fall back to (0.15 does not know that format either).
                if case .apiKey? = credentials { throw error }
                context.logger.info("Stalwart refused the credentials on /jmap/, trying 0.15's REST reload",
                                    metadata: ["target": "\(endpoint)"])
                do {
                    return try reloadREST(client, authorization, timeout: remaining())
                } catch let restError where restError.code == .reloadUnauthorized {
                    throw ReloadError(
                        .reloadUnauthorized,
                        "Stalwart at \(endpoint) refused \(credentials?.kind ?? "the request without credentials") on /jmap/ (401) "
                            + "and on /api/reload/certificate (\(restError.message))",
                        fix: credentials == nil ? "add token-file, or username and password-file" :
                            "check the username and password-file (they are refused by both APIs); " + Self.jmapUnauthorizedFix)
                } catch let restError where restError.code == .reloadFailed && restError.message.contains("answered 404") {
                    throw error  // 0.16/1.0: no REST at all, so the JMAP refusal is the answer
                }
            case .notSupported(let why):
                context.logger.info("Stalwart has no JMAP reload, trying REST", metadata: ["target": "\(endpoint)", "reason": "\(why)"])
                return try reloadREST(client, authorization, timeout: remaining())
            }
        }
    }

    enum JMAPOutcome {
        case reloaded(String)
        case notSupported(String)
        /// 401 on /jmap/: what 0.15 answers to API keys (auto mode may still try REST).
        case refused(ReloadError)
    }

    private func request(_ method: String, _ path: String, body: [UInt8]?, _ authorization: HTTPRequest.Authorization?, timeout: Double) -> HTTPRequest {
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        return HTTPRequest(
            method: method, endpoint: endpoint, path: path, headers: headers, body: body,
            authorization: authorization, connectTimeout: min(connectTimeout, timeout), timeout: timeout, trust: trust)
    }

    func reloadJMAP(_ client: HTTPClient, _ authorization: HTTPRequest.Authorization?, timeout: Double) throws(ReloadError) -> JMAPOutcome {
        let request = request("POST", "/jmap/", body: Array(Self.jmapBody.utf8), authorization, timeout: timeout)
        return try jmapAnswer(client.send(request), to: request)
    }

    /// What Stalwart's answer to the JMAP reload means (the fuzz target FuzzJSON feeds it).
    /// Every field a server string enters goes through `Redactor.word` or `excerpt` (length, one
    /// line); the finished words are scrubbed once more here, so a field added later without
    /// them still cannot carry the request's secret out.
    func jmapAnswer(_ response: HTTPResponse, to request: HTTPRequest) throws(ReloadError) -> JMAPOutcome {
        let redactor = request.redactor
        do {
            switch try jmapMeaning(response, to: request) {
            case .reloaded(let line): return .reloaded(redactor.scrub(line))
            case .notSupported(let why): return .notSupported(redactor.scrub(why))
            case .refused(let error): return .refused(error.scrubbed(by: redactor))
            }
        } catch {
            throw error.scrubbed(by: redactor)
        }
    }

    private func jmapMeaning(_ response: HTTPResponse, to request: HTTPRequest) throws(ReloadError) -> JMAPOutcome {
        let redactor = request.redactor
        let server = "Stalwart at \(endpoint)"
        if response.status == 404 || response.status == 405 {
            return .notSupported("\(request.summary) answered \(response.status)")
        }
        if response.status == 400, let type = response.json?[member: "type"]?.stringValue {
            let detail = response.json?[member: "detail"]?.stringValue ?? ""
            // 0.15: "Unknown capability: \"urn:stalwart:jmap\"" is a notRequest (its request parser).
            if type.hasSuffix("unknownCapability") || (type.hasSuffix("notRequest") && detail.contains("urn:stalwart:jmap")) {
                return .notSupported("JMAP \(redactor.word(JMAPName.short(type))): \(redactor.excerpt(detail, limit: 120))")
            }
        }
        if response.status == 401 {
            return .refused(ReloadError.httpStatus(response, to: request, server: server, unauthorizedFix: Self.jmapUnauthorizedFix))
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
                // crates/jmap/src/api/auth.rs validate_set: the key lacks sysActionCreate.
                throw ReloadError(.reloadUnauthorized, "\(server) refused x:Action/set: forbidden\(description)",
                                  fix: Self.jmapUnauthorizedFix)
            }
            throw ReloadError(.reloadFailed, "\(server) answered x:Action/set with the JMAP error \(redactor.word(type))\(description)")
        }
        if arguments[member: "created"]?[member: "r1"] != nil {
            return .reloaded("Stalwart at \(endpoint) reloaded its TLS certificates (JMAP)")
        }
        if let failure = arguments[member: "notCreated"]?[member: "r1"] {
            throw Self.notCreated(failure, server: server, redactor: redactor)
        }
        throw ReloadError(.reloadFailed, "\(server) answered x:Action/set without created.r1 or notCreated.r1: \(redactor.excerpt(response.text, limit: 200))")
    }

    /// The error for `notCreated.r1` (crates/jmap/src/registry/mapping/action.rs and mod.rs
    /// map_bootstrap_error: only the first failure is reported).
    static func notCreated(_ failure: JSON, server: String, redactor: Redactor) -> ReloadError {
        let type = failure[member: "type"]?.stringValue ?? "unknown"
        let descriptionText = failure[member: "description"].map { redactor.excerpt($0.displayText) }
        let description = descriptionText.map { ": " + $0 } ?? ""
        let object = failure[member: "objectId"]?[member: "id"]?.stringValue.map { " (certificate object \(redactor.word($0)))" } ?? ""
        if type == "forbidden" {
            if descriptionText?.hasPrefix("Insufficient permissions") == true {
                return ReloadError(.reloadUnauthorized, "\(server) refused to reload its TLS certificates: forbidden\(description)",
                                   fix: "give the API key the permission actionReloadTlsCertificates")
            }
            // map_bootstrap_error turns an internal error (reading the registry) into forbidden too.
            return ReloadError(
                .reloadFailed,
                "\(server) answered forbidden\(object) to the reload\(description); Stalwart also answers forbidden when it "
                    + "fails to read its own registry, so this is not necessarily a missing permission",
                fix: "read Stalwart's log for the error at this time; if it names a permission, give the key actionReloadTlsCertificates")
        }
        return ReloadError(
            .reloadFailed, "\(server) did not load a certificate\(object): \(redactor.word(type))\(description). \(jmapServesNow)",
            fix: "run `certreload check` on the lineage behind that certificate object, and `certreload verify` to see what is served")
    }

    func reloadREST(_ client: HTTPClient, _ authorization: HTTPRequest.Authorization?, timeout: Double) throws(ReloadError) -> String {
        let request = request("GET", "/api/reload/certificate", body: nil, authorization, timeout: timeout)
        return try restAnswer(client.send(request), to: request)
    }

    /// What Stalwart 0.15's answer to the REST reload means (the fuzz target FuzzJSON feeds it),
    /// scrubbed once more as a whole, as `jmapAnswer` is.
    func restAnswer(_ response: HTTPResponse, to request: HTTPRequest) throws(ReloadError) -> String {
        do {
            return request.redactor.scrub(try restMeaning(response, to: request))
        } catch {
            throw error.scrubbed(by: request.redactor)
        }
    }

    private func restMeaning(_ response: HTTPResponse, to request: HTTPRequest) throws(ReloadError) -> String {
        let redactor = request.redactor
        let server = "Stalwart at \(endpoint)"
        guard response.isSuccess else {
            throw ReloadError.httpStatus(response, to: request, server: server, unauthorizedFix: Self.restUnauthorizedFix)
        }
        // 0.15 answers 200 even when a certificate failed: the errors object tells.
        guard let json = response.json, let data = json[member: "data"] else {
            throw ReloadError(.reloadFailed, "\(server) answered \(request.summary) without a data object: \(redactor.excerpt(response.text, limit: 200))")
        }
        let errors = Self.configErrors(data[member: "errors"], redactor)
        let certificateErrors = errors.filter { $0.key.hasPrefix("certificate.") }
        let otherErrors = errors.filter { !$0.key.hasPrefix("certificate.") }
        // crates/common/src/manager/config.rs (v0.15.5) build_config re-resolves every macro of
        // the local configuration on each reload: an unrelated broken macro reports here too.
        let macroCaution = errors.contains { $0.type == "macro" }
            ? " A macro error may be about another setting: Stalwart 0.15 re-resolves every %{…}% macro of its configuration on each reload."
            : ""
        if !certificateErrors.isEmpty {
            let others = otherErrors.isEmpty ? "" : " It also reported: \(Self.listed(otherErrors))."
            throw ReloadError(
                .reloadFailed,
                "\(server) reported \(certificateErrors.count) certificate error(s) on reload: "
                    + "\(Self.listed(certificateErrors)). \(Self.restServesNow).\(others)\(macroCaution)",
                fix: "run `certreload check` on the lineage whose files that setting names, and make them readable by the user Stalwart runs as")
        }
        var tail = ""
        if !otherErrors.isEmpty {
            tail += "; it also reported errors about other settings, not certificates: \(Self.listed(otherErrors)).\(macroCaution)"
        }
        let warnings = Self.configErrors(data[member: "warnings"], redactor)
        if !warnings.isEmpty { tail += "; warnings: \(Self.listed(warnings))" }
        return "Stalwart at \(endpoint) reloaded its TLS certificates (REST)\(tail)"
    }

    /// The first few entries, then how many more (a server may report thousands).
    static func listed(_ entries: [ConfigEntry]) -> String {
        entries.map(\.text).abbreviated(separator: "; ") { hidden, _ in "; and \(hidden) more" }
    }

    /// One entry of 0.15's `errors` / `warnings` object: `"key": {"type": …, "error": …}`
    /// (crates/utils/src/config/mod.rs, v0.15.5).
    struct ConfigEntry {
        var key: String
        var type: String
        var text: String
    }

    static func configErrors(_ value: JSON?, _ redactor: Redactor) -> [ConfigEntry] {
        guard case .object(let pairs)? = value else { return [] }
        return pairs.map { key, entry in
            let type = entry[member: "type"]?.stringValue ?? "unknown"
            let words = entry[member: "error"]?.stringValue ?? entry[member: "default"]?.stringValue
                ?? entry[member: "value"]?.stringValue
            let (shownKey, shownType) = (redactor.word(key), redactor.word(type))
            let text = words.map { "\(shownKey): \(redactor.excerpt($0, limit: 200)) (\(shownType))" } ?? "\(shownKey): \(shownType)"
            return ConfigEntry(key: key, type: type, text: text)
        }
    }
}

enum JMAPName {
    /// "urn:ietf:params:jmap:error:unknownCapability" → "unknownCapability".
    static func short(_ type: String) -> String {
        type.split(separator: ":").last.map(String.init) ?? type
    }
}

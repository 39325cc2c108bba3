/// Makes Caddy load its certificates again through the admin API: `GET /config/`, then
/// `POST /load` with that same configuration and `Cache-Control: must-revalidate`
/// (without the header Caddy treats an identical configuration as a no-op).
///
/// It does not change the configuration; an empty (`null`) configuration is refused.
public struct CaddyReloadTarget: BlockingReloadTarget {
    public var endpoint: HTTPEndpoint
    public var trust: EndpointTrust
    public var connectTimeout: Double = 10
    /// A configuration larger than this is refused rather than sent back cut short.
    public var configurationLimit: Int = 64 << 20

    /// `url` is the admin endpoint: `http://127.0.0.1:2019` or `unix:/run/caddy/admin.sock`.
    public init(url: String, trust: EndpointTrust = .system) throws(ReloadError) {
        self.endpoint = try HTTPEndpoint(url)
        self.trust = trust
    }

    public var summary: String { "Caddy admin API at \(endpoint)" }

    static let unauthorizedFix =
        "Caddy's admin API refused the request: allow this host in the admin `origins`, or use the admin socket (unix:/path)"

    public func reloadBlocking(context: ReloadContext) throws(ReloadError) -> String {
        let client = HTTPClient(context: context)
        let started = MonotonicClock.now()
        func remaining() -> Double { max(0.001, context.timeout - (MonotonicClock.now() - started)) }

        var get = HTTPRequest(
            method: "GET", endpoint: endpoint, path: "/config/", headers: [("Accept", "application/json")],
            connectTimeout: min(connectTimeout, remaining()), timeout: remaining(), trust: trust)
        get.responseLimit = configurationLimit
        let current = try client.send(get)
        try checkConfiguration(current, from: get)

        let load = HTTPRequest(
            method: "POST", endpoint: endpoint, path: "/load",
            headers: [("Content-Type", "application/json"), ("Cache-Control", "must-revalidate")],
            body: current.body, connectTimeout: min(connectTimeout, remaining()), timeout: remaining(), trust: trust)
        return try loadAnswer(client.send(load), to: load, configurationBytes: current.body.count)
    }

    /// Refuses a `GET /config/` answer that cannot be sent back as it is (the fuzz target
    /// FuzzJSON feeds it).
    func checkConfiguration(_ current: HTTPResponse, from get: HTTPRequest) throws(ReloadError) {
        let server = "Caddy at \(endpoint)"
        guard current.isSuccess else {
            throw ReloadError.httpStatus(current, to: get, server: server, unauthorizedFix: Self.unauthorizedFix)
        }
        guard !current.truncated else {
            throw ReloadError(.reloadFailed, "\(server): the configuration is larger than \(configurationLimit) bytes; certreload will not send it back cut short")
        }
        // On the bytes: a large configuration must not cost a Character walk over all of it.
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x0a || byte == 0x0d || byte == 0x09 }
        let first = current.body.firstIndex { !isSpace($0) }
        let last = current.body.lastIndex { !isSpace($0) }
        guard let first, let last, !current.body[first...last].elementsEqual("null".utf8) else {
            throw ReloadError(.reloadFailed, "\(server) has no configuration loaded (GET /config/ answered null); there is nothing to reload",
                              fix: "start Caddy with its configuration (caddy run --config …) before reloading")
        }
        guard current.json != nil else {
            throw ReloadError(.reloadFailed, "\(server) answered GET /config/ with something that is not JSON: \(get.redactor.excerpt(current.text, limit: 200))")
        }
    }

    /// What Caddy's answer to `POST /load` means.
    func loadAnswer(_ answer: HTTPResponse, to load: HTTPRequest, configurationBytes: Int) throws(ReloadError) -> String {
        guard answer.isSuccess else {
            throw ReloadError.httpStatus(answer, to: load, server: "Caddy at \(endpoint)", unauthorizedFix: Self.unauthorizedFix)
        }
        return "Caddy at \(endpoint) loaded its configuration again (\(configurationBytes) bytes), re-reading its certificates"
    }
}

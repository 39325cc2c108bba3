/// What Stalwart 0.16 / 1.0 says it is configured to serve: its certificate objects, its
/// listeners and its default certificate, read with `x:Certificate/get`,
/// `x:NetworkListener/get` and `x:SystemSettings/get` over the reload target's endpoint and
/// credentials.
///
/// Certificate bodies are never kept: a `Text` certificate is recorded as `.text` only (Stalwart
/// masks private keys itself; certreload drops the certificate's text as well).
public struct StalwartRegistry: Sendable {
    /// Where a certificate object takes its certificate or key from
    /// (crates/registry/src/schema/structs.rs: PublicText / SecretText).
    public enum Source: Sendable, Equatable {
        case file(String)
        case text
        case environment(String)
        case other(String)

        init(_ json: JSON?) {
            switch json?[member: "@type"]?.stringValue {
            case "File"?: self = .file(json?[member: "filePath"]?.stringValue ?? "")
            case "Text"?: self = .text
            case "EnvironmentVariable"?: self = .environment(json?[member: "variableName"]?.stringValue ?? "")
            case let other?: self = .other(other)
            case nil: self = .other("absent")
            }
        }

        var description: String {
            switch self {
            case .file(let path): "File \(path)"
            case .text: "inline Text"
            case .environment(let name): "EnvironmentVariable \(name)"
            case .other(let type): type
            }
        }
    }

    public struct CertificateObject: Sendable, Equatable {
        public var id: String
        public var certificate: Source
        public var privateKey: Source
        /// The server-parsed names (`subjectAlternativeNames`).
        public var names: [String]
        /// `notValidAfter` as Stalwart stores it ("2026-12-31T09:05:14Z"), and in seconds.
        public var notValidAfter: String?
        public var notValidAfterSeconds: Int64?
        public var issuer: String?
    }

    public struct Listener: Sendable, Equatable {
        public var id: String
        public var name: String
        /// "addr:port" entries.
        public var bind: [String]
        public var `protocol`: String
        /// Default true (crates/registry/src/schema/structs_impl.rs, NetworkListener::default).
        public var useTLS: Bool
        public var tlsImplicit: Bool

        /// The ports this listener binds.
        public var ports: [Int] {
            bind.compactMap { address in address.split(separator: ":").last.flatMap { Int($0) } }
        }
    }

    public var certificates: [CertificateObject]?
    public var listeners: [Listener]?
    /// nil when SystemSettings could not be read; `.some(nil)` when no default is set.
    public var defaultCertificateID: String??
    /// The permissions whose reads were refused.
    public var refused: [String] = []

    public static let permissions = ["sysCertificateGet", "sysNetworkListenerGet", "sysSystemSettingsGet"]

    static let body = #"{"using":["urn:ietf:params:jmap:core","urn:stalwart:jmap"],"methodCalls":["#
        + #"["x:Certificate/get",{"ids":null},"c"],"#
        + #"["x:NetworkListener/get",{"ids":null},"l"],"#
        + #"["x:SystemSettings/get",{"ids":["singleton"],"properties":["defaultCertificateId"]},"s"]]}"#

    /// Why the registry could not be read at all.
    public enum Unavailable: Error, Sendable {
        /// The server has no registry (0.15 answers 404 or 400 notRequest): nothing to explain.
        case noRegistry(String)
        /// Credentials refused, transport failure, or an answer that is not JMAP.
        case failed(ReloadError)
    }

    /// Reads the three objects in one JMAP request. Blocking (libcurl): call it off the
    /// cooperative pool (`StalwartView` does, through `Blocking.run`).
    public static func read(
        endpoint: HTTPEndpoint, credentials: StalwartCredentials?, trust: EndpointTrust, timeout: Double,
        cancellation: CancellationFlag? = nil
    ) -> Result<StalwartRegistry, Unavailable> {
        let request = HTTPRequest(
            method: "POST", endpoint: endpoint, path: "/jmap/",
            headers: [("Accept", "application/json"), ("Content-Type", "application/json")], body: Array(body.utf8),
            authorization: credentials?.authorization, connectTimeout: min(10, timeout), timeout: timeout, trust: trust)
        let response: HTTPResponse
        do {
            response = try HTTPClient(cancellation: cancellation).send(request)
        } catch {
            return .failure(.failed(error))
        }
        return registry(from: response, to: request, endpoint: endpoint)
    }

    /// The registry in Stalwart's answer to `read`'s request (the fuzz target FuzzJSON feeds it).
    /// A refusal's words are scrubbed once more as a whole, as the reload's are.
    static func registry(from response: HTTPResponse, to request: HTTPRequest, endpoint: HTTPEndpoint) -> Result<StalwartRegistry, Unavailable> {
        registryMeaning(from: response, to: request, endpoint: endpoint).mapError { unavailable in
            switch unavailable {
            case .noRegistry(let why): .noRegistry(request.redactor.scrub(why))
            case .failed(let error): .failed(error.scrubbed(by: request.redactor))
            }
        }
    }

    private static func registryMeaning(from response: HTTPResponse, to request: HTTPRequest, endpoint: HTTPEndpoint) -> Result<StalwartRegistry, Unavailable> {
        let server = "Stalwart at \(endpoint)"
        if response.status == 404 || response.status == 405 {
            return .failure(.noRegistry("\(request.summary) answered \(response.status)"))
        }
        if response.status == 400, let type = response.json?[member: "type"]?.stringValue, type.hasSuffix("notRequest") || type.hasSuffix("unknownCapability") {
            return .failure(.noRegistry("JMAP \(request.redactor.word(JMAPName.short(type))) for urn:stalwart:jmap (Stalwart 0.15)"))
        }
        guard response.isSuccess else {
            return .failure(.failed(ReloadError.httpStatus(
                response, to: request, server: server,
                unauthorizedFix: "give the credentials the permissions \(permissions.joined(separator: ", "))")))
        }
        guard let calls = response.json?[member: "methodResponses"], case .array(let items) = calls else {
            return .failure(.failed(ReloadError(
                .reloadFailed, "\(server) answered \(request.summary) with something that is not a JMAP response: \(request.redactor.excerpt(response.text, limit: 200))")))
        }
        var registry = StalwartRegistry()
        for item in items {
            guard let name = item[element: 0]?.stringValue, let arguments = item[element: 1], let id = item[element: 2]?.stringValue else { continue }
            let permission = ["c": permissions[0], "l": permissions[1], "s": permissions[2]][id]
            if name == "error" {
                if let permission { registry.refused.append(permission) }
                continue
            }
            let list: [JSON]
            if case .array(let values)? = arguments[member: "list"] { list = values } else { list = [] }
            switch id {
            case "c": registry.certificates = list.map(certificate)
            case "l": registry.listeners = list.map(listener)
            case "s": registry.defaultCertificateID = .some(list.first?[member: "defaultCertificateId"]?.stringValue)
            default: break
            }
        }
        return .success(registry)
    }

    static func certificate(_ json: JSON) -> CertificateObject {
        let after = json[member: "notValidAfter"]?.stringValue
        return CertificateObject(
            id: json[member: "id"]?.stringValue ?? "?",
            certificate: Source(json[member: "certificate"]), privateKey: Source(json[member: "privateKey"]),
            names: json[member: "subjectAlternativeNames"]?.objectMembers?.map(\.0) ?? [],
            notValidAfter: after, notValidAfterSeconds: after.flatMap(parseUTC), issuer: json[member: "issuer"]?.stringValue)
    }

    static func listener(_ json: JSON) -> Listener {
        func bool(_ key: String, default value: Bool) -> Bool {
            if case .bool(let flag)? = json[member: key] { return flag }
            return value
        }
        return Listener(
            id: json[member: "id"]?.stringValue ?? "?", name: json[member: "name"]?.stringValue ?? "?",
            bind: json[member: "bind"]?.objectMembers?.map(\.0) ?? [], protocol: json[member: "protocol"]?.stringValue ?? "?",
            useTLS: bool("useTls", default: true), tlsImplicit: bool("tlsImplicit", default: false))
    }

    /// "2026-12-31T09:05:14Z" (crates/registry/src/types/datetime.rs) → seconds since 1970.
    static func parseUTC(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count == 20, bytes[4] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"), bytes[19] == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for byte in bytes[range] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int64(byte - 48)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              (1...12).contains(month), (1...31).contains(day) else { return nil }
        // Days from civil (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return days * 86_400 + hour * 3600 + minute * 60 + second
    }

    /// "2026-12-31T09:05:14Z" for seconds since 1970.
    static func formatUTC(_ seconds: Int64) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let rest = seconds - days * 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(two(month))-\(two(day))T\(two(rest / 3600)):\(two(rest % 3600 / 60)):\(two(rest % 60))Z"
    }
}

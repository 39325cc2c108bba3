/// The credentials certreload sends to Stalwart, checked for their shape before anything is sent.
///
/// What each version takes (Stalwart's source):
/// - 0.16 and 1.0 API keys: `API_` + base64url (no padding) of 28 bytes (account id, credential id,
///   20-byte secret), sent as `Authorization: Bearer` (`crates/common/src/auth/credential.rs`).
/// - 0.15 API keys: `api_` + base64 of `name:secret`, as Bearer, accepted only on `/api/`
///   (`crates/http/src/auth/authenticate.rs`, v0.15.5).
/// - Basic: an account's (or app password's) name and secret, on every version.
///
/// Messages name the shape that was expected, never the token.
public enum StalwartCredentials: Sendable {
    /// A 0.16 / 1.0 API key (`API_…`).
    case apiKey(String)
    /// A 0.15 API key (`api_…`).
    case legacyAPIKey(String)
    case basic(username: String, password: String)

    /// Reads and checks the configured secret; nil when none is configured.
    public static func load(
        token: SecretSource?, username: String?, password: SecretSource?, credentialsDirectory: String?
    ) throws(ReloadError) -> StalwartCredentials? {
        if let token {
            return try parseToken(try Secrets.read(token, credentialsDirectory: credentialsDirectory), source: token)
        }
        if let username {
            guard let password else {
                throw ReloadError(.reloadFailed, "Stalwart target has a username but no password-file",
                                  fix: "add password-file (or use token-file with an API key)")
            }
            guard !username.contains(":") else {
                throw ReloadError(
                    .stalwartCredentialShape,
                    "the Stalwart username contains ':'; Basic authentication splits name and password at the first ':'",
                    fix: "use the account's login name, or an API key in token-file")
            }
            return .basic(username: username, password: try Secrets.read(password, credentialsDirectory: credentialsDirectory))
        }
        return nil
    }

    /// Checks a token's shape. The error describes the token (length, prefix kind), never quotes it.
    static func parseToken(_ raw: String, source: SecretSource) throws(ReloadError) -> StalwartCredentials {
        let token = raw.trimmingWhitespace
        let place: String
        switch source {
        case .file(let path): place = "token-file \(path)"
        case .credential(let name): place = "credential \(name)"
        }
        let fix = "write the key alone on one line: a Stalwart 0.16/1.0 API key starts with API_ (created with x:ApiKey/set, "
            + "shown once); a 0.15 API key is api_ followed by base64 of name:secret"
        if token.lowercased().hasPrefix("bearer ") || token.lowercased().hasPrefix("basic ") {
            throw ReloadError(.stalwartCredentialShape, "\(place) holds an Authorization header value, not a key", fix: fix)
        }
        if token.contains(where: { $0.isWhitespace }) {
            throw ReloadError(.stalwartCredentialShape, "\(place) holds more than one word (\(token.count) characters)", fix: fix)
        }
        if token.hasPrefix("API_") {
            let body = token.dropFirst(4)
            guard let bytes = Base64.decode(String(body), urlSafe: true), bytes.count == 28 else {
                throw ReloadError(
                    .stalwartCredentialShape,
                    "\(place) starts like a Stalwart 0.16/1.0 API key (API_) but the rest is not 38 base64url characters "
                        + "(it has \(body.count)); the key was cut or altered",
                    fix: "copy the whole secret x:ApiKey/set showed, or create a new API key")
            }
            return .apiKey(token)
        }
        if token.hasPrefix("api_") {
            guard let bytes = Base64.decode(String(token.dropFirst(4)), urlSafe: false),
                  let text = String(validating: bytes, as: UTF8.self), let colon = text.firstIndex(of: ":"),
                  colon != text.startIndex, text.index(after: colon) != text.endIndex else {
                throw ReloadError(
                    .stalwartCredentialShape,
                    "\(place) starts like a Stalwart 0.15 API key (api_) but the rest is not base64 of name:secret",
                    fix: "write api_ followed by the output of: printf '%s' 'NAME:SECRET' | base64 -w0")
            }
            return .legacyAPIKey(token)
        }
        throw ReloadError(
            .stalwartCredentialShape,
            "\(place) does not hold a Stalwart API key (\(token.count) characters, neither API_… nor api_…); "
                + "other bearer tokens (OAuth) expire and are not for a daemon",
            fix: fix + "; or use username and password-file")
    }

    public var authorization: HTTPRequest.Authorization {
        switch self {
        case .apiKey(let token), .legacyAPIKey(let token): .bearer(token: token)
        case .basic(let username, let password): .basic(username: username, password: password)
        }
    }

    /// "an API key (0.16/1.0)", for messages.
    public var kind: String {
        switch self {
        case .apiKey: "a Stalwart 0.16/1.0 API key"
        case .legacyAPIKey: "a Stalwart 0.15 API key"
        case .basic(let username, _): "Basic credentials of \(username)"
        }
    }
}

extension String {
    var trimmingWhitespace: String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text = text.dropFirst() }
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return String(text)
    }
}

/// Base64 decoding (RFC 4648, standard or URL-safe alphabet; padding optional).
enum Base64 {
    static func decode(_ text: String, urlSafe: Bool) -> [UInt8]? {
        var values: [UInt8] = []
        var padding = 0
        for byte in text.utf8 {
            let value: UInt8
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): value = byte - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): value = byte - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = byte - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+") where !urlSafe: value = 62
            case UInt8(ascii: "/") where !urlSafe: value = 63
            case UInt8(ascii: "-") where urlSafe: value = 62
            case UInt8(ascii: "_") where urlSafe: value = 63
            case UInt8(ascii: "="):
                padding += 1
                continue
            default: return nil
            }
            if padding > 0 { return nil }
            values.append(value)
        }
        if values.count % 4 == 1 || padding > 2 { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 3 / 4)
        var index = 0
        while index < values.count {
            let chunk = values[index..<min(index + 4, values.count)]
            let a = chunk[chunk.startIndex], b = chunk[chunk.startIndex + 1]
            out.append(a << 2 | b >> 4)
            if chunk.count > 2 {
                let c = chunk[chunk.startIndex + 2]
                out.append((b & 0x0F) << 4 | c >> 2)
                if chunk.count > 3 { out.append((c & 0x03) << 6 | chunk[chunk.startIndex + 3]) }
            }
            index += 4
        }
        return out
    }
}

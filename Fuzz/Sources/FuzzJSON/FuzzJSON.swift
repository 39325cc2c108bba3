@testable import CertReload
import FuzzDriver

/// What each HTTP reload kind does with an answer: the first byte picks the status, the rest
/// is the body, handed to Stalwart's JMAP and REST reloads and its registry read, Caddy's
/// configuration check and `/load` answer, and the generic HTTP kind. Beyond not crashing:
/// no message or fix may carry the request's credentials (the server may echo them), and
/// none may grow without bound with the answer.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let statuses = [200, 400, 401, 403, 404, 405, 500, 204, 302, 201]
    let response = HTTPResponse(
        status: statuses[Int(bytes.first ?? 0) % statuses.count], headers: [("Content-Type", "application/json")],
        body: Array(bytes.dropFirst()), truncated: false)

    let stalwart = try! StalwartReloadTarget(url: "http://127.0.0.1:8080")
    // Every request knows every test secret (as a real request knows its own), so a server
    // that echoes one must never get it into a message.
    var jmap = HTTPRequest(method: "POST", endpoint: stalwart.endpoint, path: "/jmap/", authorization: .bearer(token: token))
    jmap.secrets = [password, extraSecret]
    inspect { () throws(ReloadError) in _ = try stalwart.jmapAnswer(response, to: jmap) }
    var rest = HTTPRequest(
        method: "GET", endpoint: stalwart.endpoint, path: "/api/reload/certificate",
        authorization: .basic(username: "admin", password: password))
    rest.secrets = [token, extraSecret]
    inspect { () throws(ReloadError) in _ = try stalwart.restAnswer(response, to: rest) }
    if case .failure(.failed(let error)) = StalwartRegistry.registry(from: response, to: jmap, endpoint: stalwart.endpoint) {
        check(error)
    }

    let caddy = try! CaddyReloadTarget(url: "http://127.0.0.1:2019")
    var get = HTTPRequest(method: "GET", endpoint: caddy.endpoint, path: "/config/")
    get.secrets = [token, password, extraSecret]
    inspect { () throws(ReloadError) in try caddy.checkConfiguration(response, from: get) }
    inspect { () throws(ReloadError) in _ = try caddy.loadAnswer(response, to: get, configurationBytes: response.body.count) }

    let http = try! HTTPReloadTarget(url: "http://127.0.0.1:9/reload", expectStatus: [200, 204])
    inspect { () throws(ReloadError) in _ = try http.answer(response, to: jmap) }
    return 0
}

let token = "API_ZnV6ei1zZWNyZXQtdG9rZW4"
let password = "fuzz-password-secret"
let extraSecret = "fuzz-header-secret"

func inspect(_ body: () throws(ReloadError) -> Void) {
    do { try body() } catch { check(error) }
}

func check(_ error: ReloadError) {
    let text = error.message + "\n" + (error.fix ?? "")
    for secret in [token, password, extraSecret, Redactor.base64(Array("admin:\(password)".utf8))] where text.contains(secret) {
        fatalError("a credential reached a message: \(error.code.rawValue)")
    }
    if text.utf8.count > 16_384 { fatalError("a \(text.utf8.count)-byte message (\(error.code.rawValue))") }
}

@_cdecl("FuzzJSON_main")
func fuzzerEntry(_ argc: Int32, _ argv: Arguments) -> Int32 { runLibFuzzer(argc, argv) { fuzz($0, $1) } }

import HTTPCore
import IOCore

@testable import Handlers

/// An `HTTPRequest` filled in by hand the way a protocol parser fills it: method, target
/// (path + optional `?query`) and authority in `line`, other fields in `fields` (Host is the
/// authority, never a field, as in Go).
func makeRequest(
    method: String = "GET", target: String = "/", host: String? = "localhost",
    headers: [(String, String)] = [], remote: SocketAddress? = SocketAddress(ip: "127.0.0.1", port: 50000),
    tls: Bool = false, version: HTTPVersion = .http1_1
) -> HTTPRequest {
    let r = HTTPRequest()
    r.methodRange = Array(method.utf8).withUnsafeBytes { r.appendLine($0) }
    r.method = Array(method.utf8).withUnsafeBytes { HTTPMethod.classify($0) }
    r.targetRange = Array(target.utf8).withUnsafeBytes { r.appendLine($0) }
    let bytes = Array(target.utf8)
    if let q = bytes.firstIndex(of: UInt8(ascii: "?")) {
        r.pathRange = r.targetRange.lowerBound..<(r.targetRange.lowerBound + q)
        r.queryRange = (r.targetRange.lowerBound + q + 1)..<r.targetRange.upperBound
    } else {
        r.pathRange = r.targetRange
    }
    if let host { r.authorityRange = Array(host.utf8).withUnsafeBytes { r.appendLine($0) } }
    for (n, v) in headers { r.fields.append(name: n, value: v) }
    r.connection = ConnectionInfo(remote: remote, local: nil, isTLS: tls)
    r.version = version
    return r
}

/// Records what a handler sent.
final class RecordingSink: ResponseSink {
    struct Sent: Equatable {
        var status: Int
        var fields: [String]
        var body: String
        var close: Bool
    }
    var sent: [Sent] = []
    func sendComplete(_ response: HTTPResponse, body: UnsafeRawBufferPointer) {
        // Sorted, as Go writes them: the order handlers append fields in is not observable.
        sent.append(Sent(status: response.status, fields: response.fields.pairs.map { "\($0.0): \($0.1)" }.sorted(),
                         body: String(decoding: body, as: UTF8.self), close: response.closeConnection))
    }
    func sendHead(_ response: HTTPResponse, contentLength: Int64?) { fatalError("not used") }
    func sendBody(_ response: HTTPResponse, _ bytes: UnsafeRawBufferPointer) { fatalError("not used") }
    func finish(_ response: HTTPResponse) { fatalError("not used") }
}

/// Runs `handler` on `request` and returns what it sent (nil when it sent nothing) and its result.
func run(_ handler: any Handler, _ request: HTTPRequest) -> (RecordingSink.Sent?, HandlerResult) {
    let sink = RecordingSink()
    let response = HTTPResponse(sink: sink)
    let result = withExtendedLifetime(sink) { handler.handle(request, response) }
    return (sink.sent.first, result)
}

/// Expands `template` for `request`.
func expand(_ template: String, _ request: HTTPRequest, keepUnknown: Bool = true, env: [String: String] = [:]) -> String {
    Template(template, keepUnknown: keepUnknown, environment: env).string(for: request)
}

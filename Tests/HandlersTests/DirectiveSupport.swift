import HTTPCore
import IOCore

@testable import Handlers

/// Helpers for the Directive* tests (names prefixed so they never clash with Support.swift).

/// A request filled in the way a protocol parser fills it.
func directiveRequest(
    _ method: String = "GET", _ target: String = "/", host: String? = "example.com",
    headers: [(String, String)] = [], remote: SocketAddress? = SocketAddress(ip: "127.0.0.1", port: 40000),
    version: HTTPVersion = .http1_1
) -> HTTPRequest {
    let r = HTTPRequest()
    r.methodRange = Array(method.utf8).withUnsafeBytes { r.appendLine($0) }
    r.method = Array(method.utf8).withUnsafeBytes { HTTPMethod.classify($0) }
    r.targetRange = Array(target.utf8).withUnsafeBytes { r.appendLine($0) }
    if let q = Array(target.utf8).firstIndex(of: UInt8(ascii: "?")) {
        r.pathRange = r.targetRange.lowerBound..<(r.targetRange.lowerBound + q)
        r.queryRange = (r.targetRange.lowerBound + q + 1)..<r.targetRange.upperBound
    } else {
        r.pathRange = r.targetRange
    }
    if let host { r.authorityRange = Array(host.utf8).withUnsafeBytes { r.appendLine($0) } }
    for (n, v) in headers { r.fields.append(name: n, value: v) }
    r.connection = ConnectionInfo(remote: remote, local: nil, isTLS: false)
    r.version = version
    return r
}

/// Records everything a response sends, streamed or not, like a protocol would see it.
final class DirectiveSink: ResponseSink {
    var status = 0
    var fields: [(String, String)] = []
    var body: [UInt8] = []
    /// nil: sendComplete (Content-Length = body); otherwise what sendHead declared.
    var declaredLength: Int64?? = nil
    var streamed = false
    var finished = false
    var aborted = false
    var completes = 0

    func capture(_ r: HTTPResponse) {
        status = r.status
        fields = r.fields.pairs.filter { !$0.0.isEmpty }
    }
    func sendComplete(_ response: HTTPResponse, body: UnsafeRawBufferPointer) {
        capture(response)
        self.body = Array(body)
        finished = true
        completes += 1
    }
    func sendHead(_ response: HTTPResponse, contentLength: Int64?) {
        capture(response)
        streamed = true
        declaredLength = .some(contentLength)
    }
    func sendBody(_ response: HTTPResponse, _ bytes: UnsafeRawBufferPointer) { body += bytes }
    func finish(_ response: HTTPResponse) { finished = true }
    func abort(_ response: HTTPResponse) {
        aborted = true
        finished = true
    }

    func header(_ name: String) -> String? { fields.first { $0.0.lowercased() == name.lowercased() }?.1 }
    func headers(_ name: String) -> [String] { fields.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// Runs `handler` (typically a `ServerHandler`) and returns the sink and the response.
@discardableResult
func directiveRun(_ handler: any Handler, _ request: HTTPRequest) -> DirectiveSink {
    let sink = DirectiveSink()
    let response = HTTPResponse(sink: sink)
    withExtendedLifetime(sink) {
        _ = handler.handle(request, response)
        if !response.headSent { response.sendEmpty() }
    }
    return sink
}

/// A server handler over routes (each route: matchers and handlers).
func directiveServer(_ routes: [Route], errors: [Route] = []) -> ServerHandler {
    ServerHandler(routes: routes, errorRoutes: errors)
}

/// Expands `template` for a request.
func directiveExpand(_ template: String, _ r: HTTPRequest, keepUnknown: Bool = true) -> String {
    Template(template, keepUnknown: keepUnknown).string(for: r)
}

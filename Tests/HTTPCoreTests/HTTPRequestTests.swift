import IOCore
import Testing

@testable import HTTPCore

func strip(_ s: String) -> String {
    var s = s
    return s.withUTF8 { String(decoding: HTTPRequest.stripPort(UnsafeRawBufferPointer($0)), as: UTF8.self) }
}

@Suite("HTTPRequest")
struct HTTPRequestTests {
    @Test(arguments: [
        ("host", "host"), ("host:80", "host"), ("HOST.Example:8080", "HOST.Example"), ("host:", "host"),
        ("[::1]:8080", "::1"), ("[::1]", "[::1]"), ("[::1]:", "::1"), ("::1", "::1"), ("fe80::1:2", "fe80::1:2"),
        ("1.2.3.4:5", "1.2.3.4"), ("", ""), (":80", ""), ("[::1]x", "[::1]x"), ("[", "["),
    ])
    func stripPort(_ input: String, _ expected: String) {
        #expect(strip(input) == expected)
    }

    /// Fills `r` the way a protocol parser does.
    func fill(_ r: HTTPRequest, method: String, target: String, host: String?) {
        r.methodRange = Array(method.utf8).withUnsafeBytes { r.appendLine($0) }
        r.method = Array(method.utf8).withUnsafeBytes { HTTPMethod.classify($0) }
        r.targetRange = Array(target.utf8).withUnsafeBytes { r.appendLine($0) }
        let q = target.firstIndex(of: "?")
        let pathLen = target.utf8.distance(from: target.startIndex, to: q ?? target.endIndex)
        r.pathRange = r.targetRange.lowerBound..<(r.targetRange.lowerBound + pathLen)
        r.queryRange = q.map { _ in (r.pathRange.upperBound + 1)..<r.targetRange.upperBound }
        if let host { r.authorityRange = Array(host.utf8).withUnsafeBytes { r.appendLine($0) } }
    }

    @Test func rangesAndStrings() {
        let r = HTTPRequest()
        fill(r, method: "POST", target: "/a%20b?x=1", host: "Example.COM:8443")
        #expect(r.methodString == "POST" && r.method == .POST)
        #expect(r.targetString == "/a%20b?x=1")
        #expect(r.pathString == "/a%20b")
        #expect(r.withLineBytes(r.queryRange!) { String(decoding: $0, as: UTF8.self) } == "x=1")
        #expect(r.hostString == "Example.COM")
        #expect(String(decoding: r.line, as: UTF8.self) == "POST/a%20b?x=1Example.COM:8443")
    }

    @Test func hostIsEmptyWithoutAuthority() {
        let r = HTTPRequest()
        fill(r, method: "GET", target: "/", host: nil)
        #expect(r.hostString == "")
        #expect(r.withHost { $0.count } == 0)
    }

    @Test func resetKeepsStorageAndClearsEverything() {
        let r = HTTPRequest()
        fill(r, method: "GET", target: "/" + String(repeating: "p", count: 1000), host: "h")
        r.fields.append(name: "X", value: "1")
        r.contentLength = 5
        r.hasStreamingBody = true
        r.version = .http1_0
        r.startNanos = 9
        r.bodyBytesRead = 3
        r.connection = ConnectionInfo(remote: SocketAddress(ip: "1.2.3.4", port: 5), isTLS: true)
        let lineCap = r.line.capacity
        r.reset()
        #expect(r.line.isEmpty && r.line.capacity == lineCap)
        #expect(r.methodRange == 0..<0 && r.targetRange == 0..<0 && r.pathRange == 0..<0)
        #expect(r.queryRange == nil && r.authorityRange == nil)
        #expect(r.method == .GET && r.version == .http1_1)
        #expect(r.fields.count == 0)
        #expect(r.contentLength == nil && !r.hasStreamingBody && r.startNanos == 0 && r.bodyBytesRead == 0)
        // Connection facts belong to the connection, not the request.
        #expect(r.connection.isTLS && r.connection.remote?.port == 5)
    }
}

/// Records what a response sends.
final class FakeSink: ResponseSink {
    enum Event: Equatable {
        case complete(status: Int, fields: [String], body: String)
        case head(status: Int, fields: [String], length: Int64?)
        case body(String)
        case finish
    }
    var events: [Event] = []
    func fields(_ r: HTTPResponse) -> [String] { r.fields.pairs.map { "\($0.0): \($0.1)" } }
    func sendComplete(_ response: HTTPResponse, body: UnsafeRawBufferPointer) {
        events.append(.complete(status: response.status, fields: fields(response), body: String(decoding: body, as: UTF8.self)))
    }
    func sendHead(_ response: HTTPResponse, contentLength: Int64?) {
        events.append(.head(status: response.status, fields: fields(response), length: contentLength))
    }
    func sendBody(_ response: HTTPResponse, _ bytes: UnsafeRawBufferPointer) {
        events.append(.body(String(decoding: bytes, as: UTF8.self)))
    }
    func finish(_ response: HTTPResponse) { events.append(.finish) }
}

/// A deferred header operation that sets a field.
struct SetHeader: ResponseHeaderOperation {
    let name: String
    let value: String
    func apply(to response: HTTPResponse) {
        response.fields.remove(name: name)
        response.fields.append(name: name, value: value)
    }
}

@Suite("HTTPResponse")
struct HTTPResponseTests {
    @Test func sendCompleteRunsDeferredOperationsFirst() {
        let sink = FakeSink()
        let r = HTTPResponse(sink: sink)
        r.status = 404
        r.fields.append(name: "X-A", value: "handler")
        r.deferred.append(SetHeader(name: "X-A", value: "deferred"))
        r.deferred.append(SetHeader(name: "X-B", value: "2"))
        r.send("not here")
        #expect(sink.events == [.complete(status: 404, fields: ["X-A: deferred", "X-B: 2"], body: "not here")])
        #expect(r.headSent && r.finished)
        #expect(r.bodyBytes == 8)
        #expect(r.deferred.isEmpty)
    }

    @Test func sendEmptyAndBytes() {
        let sink = FakeSink()
        let r = HTTPResponse(sink: sink)
        r.sendEmpty()
        #expect(sink.events == [.complete(status: 200, fields: [], body: "")])
        #expect(r.bodyBytes == 0 && r.finished)
        r.reset()
        Array("xyz".utf8).withUnsafeBytes { r.send(body: $0) }
        #expect(sink.events.last == .complete(status: 200, fields: [], body: "xyz"))
        #expect(r.bodyBytes == 3)
    }

    @Test func streamedResponse() {
        let sink = FakeSink()
        let r = HTTPResponse(sink: sink)
        r.status = 201
        r.deferred.append(SetHeader(name: "X-Late", value: "yes"))
        r.sendHead(contentLength: nil)
        #expect(r.headSent && !r.finished)
        Array("ab".utf8).withUnsafeBytes { r.write($0) }
        Array("cde".utf8).withUnsafeBytes { r.write($0) }
        r.finish()
        #expect(sink.events == [.head(status: 201, fields: ["X-Late: yes"], length: nil), .body("ab"), .body("cde"), .finish])
        #expect(r.bodyBytes == 5 && r.finished)
    }

    @Test func sendHeadWithLength() {
        let sink = FakeSink()
        let r = HTTPResponse(sink: sink)
        r.sendHead(contentLength: 10)
        #expect(sink.events == [.head(status: 200, fields: [], length: 10)])
    }

    @Test func resetRestoresDefaultsAndKeepsCapacity() {
        let sink = FakeSink()
        let r = HTTPResponse(sink: sink)
        r.status = 500
        r.closeConnection = true
        r.fields.append(name: "A", value: "b")
        r.deferred.append(SetHeader(name: "X", value: "y"))
        let deferredCap = r.deferred.capacity
        r.reset()
        #expect(r.status == 200 && !r.closeConnection && r.fields.count == 0 && r.deferred.isEmpty)
        #expect(r.deferred.capacity == deferredCap)
        #expect(!r.headSent && !r.finished && r.bodyBytes == 0)
        r.send("ok")
        #expect(sink.events == [.complete(status: 200, fields: [], body: "ok")])
    }
}

@Suite("HTTPStatus")
struct HTTPStatusTests {
    /// Go's `net/http.StatusText` (Go 1.25).
    static let go: [Int: String] = [
        100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",
        200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information", 204: "No Content",
        205: "Reset Content", 206: "Partial Content", 207: "Multi-Status", 208: "Already Reported", 226: "IM Used",
        300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
        305: "Use Proxy", 307: "Temporary Redirect", 308: "Permanent Redirect",
        400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
        405: "Method Not Allowed", 406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
        409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed", 413: "Request Entity Too Large",
        414: "Request URI Too Long", 415: "Unsupported Media Type", 416: "Requested Range Not Satisfiable",
        417: "Expectation Failed", 418: "I'm a teapot", 421: "Misdirected Request", 422: "Unprocessable Entity",
        423: "Locked", 424: "Failed Dependency", 425: "Too Early", 426: "Upgrade Required", 428: "Precondition Required",
        429: "Too Many Requests", 431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
        500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
        504: "Gateway Timeout", 505: "HTTP Version Not Supported", 506: "Variant Also Negotiates",
        507: "Insufficient Storage", 508: "Loop Detected", 510: "Not Extended", 511: "Network Authentication Required",
    ]

    @Test func reasonMatchesGoForEveryCode() {
        for code in 0...1000 {
            #expect("\(HTTPStatus.reason(code))" == (HTTPStatusTests.go[code] ?? ""), "\(code)")
        }
    }
}

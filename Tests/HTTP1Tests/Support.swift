import Foundation
import HTTPCore
import IOCore
import Testing

@testable import HTTP1

/// A responder whose behaviour each test picks.
final class TestResponder: HTTP1Responder {
    enum Mode {
        /// Caddy's example 1: `respond "Hello world\n"` with text/plain.
        case hello
        /// Body = method + " " + target + " host=" + host.
        case echo
        /// Streams "Hello" and " world" with unknown length.
        case stream
        /// Keeps the response for the test to finish.
        case pending
        /// Reads the whole body, then answers with it.
        case readBody
        /// Returns `.next` without sending.
        case next
        /// Custom.
        case custom((HTTPRequest, HTTPResponse) -> HandlerResult)
    }

    var mode: Mode
    var calls = 0
    var pendingResponses: [HTTPResponse] = []
    var readers: [BodyCollector] = []

    init(_ mode: Mode = .hello) { self.mode = mode }

    func respond(_ request: HTTPRequest, _ response: HTTPResponse) -> HandlerResult {
        calls += 1
        switch mode {
        case .hello:
            response.fields.append(.contentType, "text/plain; charset=utf-8")
            response.send("Hello world\n")
            return .done
        case .echo:
            let text = "\(request.methodString) \(request.targetString) host=\(request.authorityRange == nil ? "<nil>" : request.hostString)"
            var t = text
            t.withUTF8 { response.send(body: UnsafeRawBufferPointer($0)) }
            return .done
        case .stream:
            response.sendHead(contentLength: nil)
            Array("Hello".utf8).withUnsafeBytes { response.write($0) }
            Array(" world".utf8).withUnsafeBytes { response.write($0) }
            response.finish()
            return .done
        case .pending:
            pendingResponses.append(response)
            return .pending
        case .readBody:
            guard let source = request.bodySource else {
                response.send("no body")
                return .done
            }
            let c = BodyCollector(response: response, source: source)
            readers.append(c)
            source.startReading(c)
            return .pending
        case .next:
            return .next
        case .custom(let f):
            return f(request, response)
        }
    }
}

/// Collects a request body and answers with `got <n>: <body>` when it ends.
final class BodyCollector: RequestBodyReader {
    let response: HTTPResponse
    let source: any RequestBodySource
    var body: [UInt8] = []
    var finished = false
    var failure: RequestBodyError? = nil
    var trailers: [(String, String)] = []
    var respondOnEnd = true

    init(response: HTTPResponse, source: any RequestBodySource) {
        self.response = response
        self.source = source
    }

    func requestBody(_ bytes: UnsafeRawBufferPointer) { body.append(contentsOf: bytes) }

    func requestBodyFinished() {
        finished = true
        trailers = source.trailers.pairs
        if respondOnEnd {
            let text = "got \(body.count): " + String(decoding: body, as: UTF8.self)
            var t = text
            t.withUTF8 { response.send(body: UnsafeRawBufferPointer($0)) }
        }
    }

    func requestBodyFailed(_ error: RequestBodyError) { failure = error }
}

/// Drives one connection in memory, like the server's event loop would.
final class Harness: HTTP1ConnectionDelegate {
    let input = ByteBuffer(capacity: 64)
    let output = ByteBuffer(capacity: 64)
    let responder: TestResponder
    let dateCache = DateCache()
    var conn: HTTP1Connection!
    var serviceRequests = 0
    var logged: [(path: String, status: Int, bytesRead: Int64)] = []

    init(_ mode: TestResponder.Mode = .hello, configure: (inout HTTP1Configuration) -> Void = { _ in }) {
        responder = TestResponder(mode)
        var cfg = HTTP1Configuration()
        configure(&cfg)
        conn = HTTP1Connection(
            input: input, output: output, configuration: cfg, dateCache: dateCache,
            connectionInfo: ConnectionInfo(), responder: responder)
        conn.delegate = self
    }

    func http1ConnectionNeedsService(_ connection: HTTP1Connection) { serviceRequests += 1 }

    func http1Connection(
        _ connection: HTTP1Connection, finished request: HTTPRequest, response: HTTPResponse, bytesRead: Int64
    ) {
        logged.append((request.pathString, response.status, bytesRead))
    }

    /// Appends bytes and calls `receive()`.
    @discardableResult
    func feed(_ bytes: [UInt8]) -> HTTP1Action {
        input.append(bytes)
        return conn.receive()
    }

    @discardableResult
    func feed(_ s: String) -> HTTP1Action { feed(Array(s.utf8)) }

    /// Everything written so far, drained like a driver's write would.
    func take() -> String {
        let s = String(decoding: output.readableArray(), as: UTF8.self)
        output.clear()
        return normalizeDate(s)
    }

    func takeBytes() -> [UInt8] {
        let a = output.readableArray()
        output.clear()
        return a
    }
}

/// Replaces the 29-byte IMF-fixdate after `Date: ` with `X`.
func normalizeDate(_ s: String) -> String {
    var out = ""
    var rest = Substring(s)
    while let r = rest.range(of: "Date: ") {
        out += rest[..<r.upperBound]
        out += "X"
        let after = rest[r.upperBound...]
        rest = after.dropFirst(min(29, after.count))
    }
    out += rest
    return out
}

/// The hello response as Berth sends it (Content-Type from the handler, then Server, Date,
/// Content-Length).
let hello = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nServer: Berth\r\nDate: X\r\nContent-Length: 12\r\n\r\nHello world\n"

func helloWith(_ connection: String) -> String {
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nServer: Berth\r\nDate: X\r\nContent-Length: 12\r\nConnection: \(connection)\r\n\r\nHello world\n"
}

/// Go's rejection format.
func goError(_ status: String, reason: String? = nil) -> String {
    let text = reason.map { "\(status): \($0)" } ?? status
    return "HTTP/1.1 \(text)\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n\(text)"
}

let badRequest = goError("400 Bad Request")

/// Echo responder's response for a body.
func echoResponse(_ body: String, connection: String? = nil) -> String {
    var s = "HTTP/1.1 200 OK\r\nServer: Berth\r\nDate: X\r\nContent-Length: \(body.utf8.count)\r\n"
    if let connection { s += "Connection: \(connection)\r\n" }
    return s + "\r\n" + body
}

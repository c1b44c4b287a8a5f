import CNGHTTP2
import Foundation
import HTTPCore
import IOCore
import Testing

@testable import HTTP2

/// A responder whose behaviour each test picks.
final class TestResponder: HTTP2Responder {
    enum Mode {
        /// `respond "Hello world\n"` with text/plain.
        case hello
        /// Body = method + " " + target + " host=" + host.
        case echo
        /// Keeps the response for the test to finish.
        case pending
        /// Reads the whole body, then answers `got <n>: <body>`.
        case readBody
        /// Custom.
        case custom((HTTPRequest, HTTPResponse) -> HandlerResult)
    }

    var mode: Mode
    var calls = 0
    var pending: [HTTPResponse] = []
    var requests: [HTTPRequest] = []
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
            let host = request.authorityRange == nil ? "<nil>" : request.hostString
            var t = "\(request.methodString) \(request.targetString) host=\(host)"
            t.withUTF8 { response.send(body: UnsafeRawBufferPointer($0)) }
            return .done
        case .pending:
            pending.append(response)
            requests.append(request)
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
    var chunks = 0
    var finished = false
    var failure: RequestBodyError? = nil
    var respondOnEnd = true

    init(response: HTTPResponse, source: any RequestBodySource) {
        self.response = response
        self.source = source
    }

    func requestBody(_ bytes: UnsafeRawBufferPointer) {
        body.append(contentsOf: bytes)
        chunks += 1
    }

    func requestBodyFinished() {
        finished = true
        if respondOnEnd {
            var t = "got \(body.count): " + String(decoding: body.prefix(64), as: UTF8.self)
            t.withUTF8 { response.send(body: UnsafeRawBufferPointer($0)) }
        }
    }

    func requestBodyFailed(_ error: RequestBodyError) { failure = error }
}

/// One server connection and one nghttp2 client, pumping bytes both ways in memory like an
/// event loop would.
final class Harness: HTTP2ConnectionDelegate {
    let input = ByteBuffer(capacity: 256)
    let output = ByteBuffer(capacity: 256)
    let responder: TestResponder
    let dateCache = DateCache()
    var conn: HTTP2Connection!
    var client: H2Client
    var lastAction: HTTP2Action = .readMore
    var serviceRequests = 0
    var logged: [(path: String, status: Int, bytesRead: Int64, size: Int64)] = []
    /// Bytes the server wrote (raw tests inspect them).
    var serverBytes: [UInt8] = []
    var nowNanos: UInt64 = 1_000_000_000

    init(
        _ mode: TestResponder.Mode = .hello, client: H2Client = H2Client(),
        configure: (inout HTTP2Configuration) -> Void = { _ in }
    ) {
        responder = TestResponder(mode)
        self.client = client
        var cfg = HTTP2Configuration()
        configure(&cfg)
        conn = HTTP2Connection(
            input: input, output: output, configuration: cfg, dateCache: dateCache,
            connectionInfo: ConnectionInfo(), responder: responder)
        conn.delegate = self
        conn.clock = { [unowned self] in self.nowNanos }
    }

    func http2ConnectionNeedsService(_ connection: HTTP2Connection) { serviceRequests += 1 }

    func http2Connection(
        _ connection: HTTP2Connection, finished request: HTTPRequest, response: HTTPResponse, bytesRead: Int64
    ) {
        logged.append((request.pathString, response.status, bytesRead, response.bodyBytes))
    }

    /// Takes what the server wrote, like a driver's write.
    func drainServer() -> [UInt8] {
        let a = output.readableArray()
        output.clear()
        serverBytes += a
        if lastAction == .flush { lastAction = .readMore }
        return a
    }

    /// Pumps bytes until both sides are quiet (or the connection closed).
    @discardableResult
    func pump(rounds: Int = 1000) -> HTTP2Action {
        for _ in 0..<rounds {
            var moved = false
            let c = client.send()
            if !c.isEmpty, lastAction != .close, lastAction != .flushAndClose {
                input.append(c)
                lastAction = conn.receive()
                moved = true
            }
            let s = drainServer()
            if !s.isEmpty {
                client.receive(s)
                moved = true
            }
            if lastAction == .wait || serviceRequests > 0 {
                serviceRequests = 0
                if lastAction != .close && lastAction != .flushAndClose {
                    lastAction = conn.resume()
                    if !output.isEmpty { moved = true }
                }
            }
            if !moved { break }
        }
        return lastAction
    }

    /// Starts the connection (server preface) and exchanges SETTINGS.
    @discardableResult
    func start() -> HTTP2Action {
        lastAction = conn.start()
        return pump()
    }

    /// Sends raw bytes to the server (no client session involved).
    @discardableResult
    func feedRaw(_ bytes: [UInt8]) -> HTTP2Action {
        input.append(bytes)
        lastAction = conn.receive()
        _ = drainServer()
        return lastAction
    }

    /// Runs a pending handler's completion the way the driver would (outside any call).
    func service() {
        if serviceRequests > 0 { pump() }
    }
}

// MARK: - Raw frames

enum Raw {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    static func frame(_ type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, _ payload: [UInt8] = []) -> [UInt8] {
        let n = payload.count
        return [
            UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF), type, flags,
            UInt8(stream >> 24 & 0x7F), UInt8(stream >> 16 & 0xFF), UInt8(stream >> 8 & 0xFF), UInt8(stream & 0xFF),
        ] + payload
    }

    static func settings(_ entries: [(UInt16, UInt32)] = []) -> [UInt8] {
        var p: [UInt8] = []
        for (id, v) in entries {
            p += [UInt8(id >> 8), UInt8(id & 0xFF), UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
        }
        return frame(HTTP2FrameHeader.settings, p)
    }

    static let settingsAck = frame(HTTP2FrameHeader.settings, flags: HTTP2FrameHeader.ack)

    static func ping(ack: Bool = false) -> [UInt8] {
        frame(HTTP2FrameHeader.ping, flags: ack ? HTTP2FrameHeader.ack : 0, [1, 2, 3, 4, 5, 6, 7, 8])
    }

    static func rst(_ stream: UInt32, code: UInt32 = 8) -> [UInt8] {
        frame(
            HTTP2FrameHeader.rstStream, stream: stream,
            [UInt8(code >> 24), UInt8(code >> 16 & 0xFF), UInt8(code >> 8 & 0xFF), UInt8(code & 0xFF)])
    }

    static func data(_ stream: UInt32, _ payload: [UInt8] = [], endStream: Bool = false) -> [UInt8] {
        frame(HTTP2FrameHeader.data, flags: endStream ? HTTP2FrameHeader.endStream : 0, stream: stream, payload)
    }

    static func headers(_ stream: UInt32, _ block: [UInt8], endStream: Bool = true, endHeaders: Bool = true) -> [UInt8] {
        var f: UInt8 = 0
        if endStream { f |= HTTP2FrameHeader.endStream }
        if endHeaders { f |= HTTP2FrameHeader.endHeaders }
        return frame(HTTP2FrameHeader.headers, flags: f, stream: stream, block)
    }

    static func continuation(_ stream: UInt32, _ block: [UInt8], endHeaders: Bool = false) -> [UInt8] {
        frame(HTTP2FrameHeader.continuation, flags: endHeaders ? HTTP2FrameHeader.endHeaders : 0, stream: stream, block)
    }

    /// Client preface, empty SETTINGS and (optionally) the ACK of the server's SETTINGS.
    static func hello(ack: Bool = true) -> [UInt8] { preface + settings() + (ack ? settingsAck : []) }
}

/// An HPACK encoder (nghttp2's deflater) for raw HEADERS blocks.
final class HPACKEncoder {
    private var deflater: OpaquePointer!

    init() {
        var d: OpaquePointer? = nil
        nghttp2_hd_deflate_new(&d, 4096)
        deflater = d
    }

    deinit { nghttp2_hd_deflate_del(deflater) }

    func encode(_ pairs: [(String, String)]) -> [UInt8] {
        withNV(pairs) { nva in
            let bound = nghttp2_hd_deflate_bound(deflater, nva, nva.count)
            var out = [UInt8](repeating: 0, count: bound)
            let n = nghttp2_hd_deflate_hd(deflater, &out, bound, nva, nva.count)
            return Array(out[0..<max(0, n)])
        }
    }

    /// A GET request block.
    func get(_ path: String = "/", extra: [(String, String)] = []) -> [UInt8] {
        encode([(":method", "GET"), (":scheme", "https"), (":path", path), (":authority", "example.com")] + extra)
    }

    func post(_ path: String = "/") -> [UInt8] {
        encode([(":method", "POST"), (":scheme", "https"), (":path", path), (":authority", "example.com")])
    }
}

/// A frame the server sent.
struct ParsedFrame {
    var type: UInt8
    var flags: UInt8
    var stream: UInt32
    var payload: [UInt8]

    /// GOAWAY (last stream id, error code).
    var goAway: (last: UInt32, code: UInt32)? {
        guard type == HTTP2FrameHeader.goAway, payload.count >= 8 else { return nil }
        return (be32(0) & 0x7FFF_FFFF, be32(4))
    }

    /// RST_STREAM error code.
    var rstCode: UInt32? { type == HTTP2FrameHeader.rstStream && payload.count == 4 ? be32(0) : nil }

    func be32(_ i: Int) -> UInt32 {
        UInt32(payload[i]) << 24 | UInt32(payload[i + 1]) << 16 | UInt32(payload[i + 2]) << 8 | UInt32(payload[i + 3])
    }
}

/// Splits server output into frames (the server sends no preface magic).
func parseFrames(_ b: [UInt8]) -> [ParsedFrame] {
    var out: [ParsedFrame] = []
    var i = 0
    while i + 9 <= b.count {
        let n = Int(b[i]) << 16 | Int(b[i + 1]) << 8 | Int(b[i + 2])
        guard i + 9 + n <= b.count else { break }
        let sid = (UInt32(b[i + 5]) << 24 | UInt32(b[i + 6]) << 16 | UInt32(b[i + 7]) << 8 | UInt32(b[i + 8])) & 0x7FFF_FFFF
        out.append(ParsedFrame(type: b[i + 3], flags: b[i + 4], stream: sid, payload: Array(b[(i + 9)..<(i + 9 + n)])))
        i += 9 + n
    }
    return out
}

extension Array where Element == ParsedFrame {
    var goAway: (last: UInt32, code: UInt32)? { last { $0.type == HTTP2FrameHeader.goAway }?.goAway }
    func resets(_ code: UInt32) -> [UInt32] {
        filter { $0.rstCode == code }.map(\.stream)
    }
}

/// Calls `body` with `pairs` as nghttp2 header entries; the name and value bytes stay alive
/// for the call (nghttp2 copies them: no NO_COPY flags).
func withNV<R>(_ pairs: [(String, String)], _ body: ([nghttp2_nv]) -> R) -> R {
    let names = pairs.map { Array($0.0.utf8) }
    let values = pairs.map { Array($0.1.utf8) }
    var nva: [nghttp2_nv] = []
    for i in pairs.indices {
        names[i].withUnsafeBufferPointer { nb in
            values[i].withUnsafeBufferPointer { vb in
                nva.append(
                    nghttp2_nv(
                        name: UnsafeMutablePointer(mutating: nb.baseAddress ?? UnsafePointer(bitPattern: 1)!),
                        value: UnsafeMutablePointer(mutating: vb.baseAddress ?? UnsafePointer(bitPattern: 1)!),
                        namelen: nb.count, valuelen: vb.count, flags: 0))
            }
        }
    }
    return withExtendedLifetime((names, values)) { body(nva) }
}

import Foundation
import HTTPCore
import IOCore

@testable import Handlers

/// Helpers for the FileServer* tests (names prefixed `FS` so they never clash).

/// A request as a protocol parser fills it.
func fsRequest(_ method: String = "GET", _ target: String, headers: [(String, String)] = [], tls: Bool = false) -> HTTPRequest {
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
    r.authorityRange = Array("localhost".utf8).withUnsafeBytes { r.appendLine($0) }
    for (n, v) in headers { r.fields.append(name: n, value: v) }
    r.connection = ConnectionInfo(remote: nil, local: nil, isTLS: tls)
    return r
}

/// Records a response as a protocol would see it; optionally with flow control that stops
/// taking bytes after `window` bytes until `drain()`.
final class FSSink: ResponseSink, ResponseFlowControl {
    var status = 0
    var fields: [(String, String)] = []
    var body: [UInt8] = []
    var declared: Int64?? = nil
    var finished = false
    var aborted = false
    var window: Int? = nil
    var buffered = 0
    weak var observer: (any ResponseFlowObserver)?
    var zeroCopy = false
    var region: (offset: Int64, count: Int64)? = nil

    func capture(_ r: HTTPResponse) {
        status = r.status
        fields = r.fields.pairs.filter { !$0.0.isEmpty }
    }
    func sendComplete(_ response: HTTPResponse, body: UnsafeRawBufferPointer) {
        capture(response)
        self.body = Array(body)
        finished = true
    }
    func sendHead(_ response: HTTPResponse, contentLength: Int64?) {
        capture(response)
        declared = .some(contentLength)
    }
    func sendBody(_ response: HTTPResponse, _ bytes: UnsafeRawBufferPointer) {
        body += bytes
        buffered += bytes.count
    }
    func finish(_ response: HTTPResponse) { finished = true }
    func sendFileRegion(_ response: HTTPResponse, file: SharedFile, offset: Int64, count: Int64) -> Bool {
        guard zeroCopy else { return false }
        capture(response)
        region = (offset, count)
        var b = [UInt8](repeating: 0, count: Int(count))
        let n = b.withUnsafeMutableBytes { file.readFully(into: $0.baseAddress!, count: Int(count), at: offset) }
        body = Array(b[0..<n])
        finished = true
        return true
    }

    var isResponseWritable: Bool {
        guard let w = window else { return true }
        return buffered < w
    }
    func setFlowObserver(_ observer: (any ResponseFlowObserver)?, for response: HTTPResponse) { self.observer = observer }
    func abortStreamedResponse(_ response: HTTPResponse) { aborted = true }
    func switchProtocols(_ response: HTTPResponse, to receiver: any UpgradeReceiver) -> Bool { false }

    /// The transport wrote everything: tell the observer.
    func drain() {
        buffered = 0
        observer?.responseWritable()
    }

    func field(_ name: String) -> String? { fields.first { $0.0.lowercased() == name.lowercased() }?.1 }
    func all(_ name: String) -> [String] { fields.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// Result of running the file server once.
struct FSResult {
    var sink: FSSink
    var response: HTTPResponse
    var result: HandlerResult
    /// The handler error's status (Caddy's HandlerError), 0 when the response was sent.
    var error: Int { response.errorStatus }
    var status: Int { sink.status }
    func field(_ n: String) -> String? { sink.field(n) }
    var text: String { sink.text }
}

/// A site root with the files the tests use, plus a directory outside it.
final class FSFixture {
    let base: String
    let root: String
    let outside: String
    /// 2024-01-02 03:04:05 UTC, Caddy's `cy3vy63hrojk-b` for an 11-byte file.
    static let fixedDate = Date(timeIntervalSince1970: 1_704_164_645)

    init() {
        base = NSTemporaryDirectory() + "berth-fs-\(UUID().uuidString)"
        root = base + "/root"
        outside = base + "/outside"
        let fm = FileManager.default
        for d in [root, outside, root + "/sub", root + "/empty", root + "/gz", root + "/deep/er/est", root + "/.git"] {
            try! fm.createDirectory(atPath: d, withIntermediateDirectories: true)
        }
        write("file.txt", "hello world", date: FSFixture.fixedDate)
        write("index.html", "<h1>hi</h1>\n")
        write("sub/index.txt", "sub index\n")
        write("data.bin", String(repeating: "0123456789", count: 500))
        write(".hidden", "secret\n")
        write("a b.txt", "space\n")
        write("empty.txt", "")
        write("noext", "no extension\n")
        write("gz/app.css", String(repeating: "body{color:red}\n", count: 100))
        write("gz/app.css.gz", "GZIPPED")
        write("gz/app.css.br", "BROTLI!!")
        write("gz/app.css.zst", "ZSTD")
        write("deep/er/est/x.json", "{\"a\":1}")
        write(".git/config", "[core]\n")
        write("Caddyfile", ":80 {\n}\n")
        write("page.HTML", "<p>upper</p>")
        try! "outside secret\n".write(toFile: outside + "/secret.txt", atomically: false, encoding: .utf8)
        symlink("file.txt", root + "/link-in")
        symlink("sub", root + "/link-dir-in")
        symlink("../outside/secret.txt", root + "/link-out")
        symlink("../outside", root + "/link-dir-out")
        symlink(outside + "/secret.txt", root + "/link-abs")
        symlink("sub/../file.txt", root + "/link-dotdot-in")
        symlink("loop-b", root + "/loop-a")
        symlink("loop-a", root + "/loop-b")
        mkfifo(root + "/fifo", 0o644)
    }

    func write(_ rel: String, _ text: String, date: Date? = nil) {
        let p = root + "/" + rel
        try! text.write(toFile: p, atomically: false, encoding: .utf8)
        if let date { try! FileManager.default.setAttributes([.modificationDate: date], ofItemAtPath: p) }
    }

    deinit { try? FileManager.default.removeItem(atPath: base) }

    func handler(_ configure: (inout FileServerHandler.Settings) -> Void = { _ in }) -> FileServerHandler {
        var s = FileServerHandler.Settings()
        s.root = root
        s.hide = [root + "/Caddyfile"]
        configure(&s)
        return FileServerHandler(s)
    }
}

/// Runs `handler` for `request` with a fresh sink (flow control off unless `window`).
func fsRun(_ handler: FileServerHandler, _ request: HTTPRequest, window: Int? = nil, zeroCopy: Bool = false) -> FSResult {
    let sink = FSSink()
    sink.window = window
    sink.zeroCopy = zeroCopy
    let response = HTTPResponse(sink: sink)
    let r = handler.handle(request, response)
    // Let a flow-controlled pump run to the end.
    var rounds = 0
    while window != nil && !sink.finished && rounds < 10_000 {
        rounds += 1
        sink.drain()
    }
    return FSResult(sink: sink, response: response, result: r)
}

func fsGet(_ h: FileServerHandler, _ target: String, _ headers: [(String, String)] = [], method: String = "GET") -> FSResult {
    fsRun(h, fsRequest(method, target, headers: headers))
}

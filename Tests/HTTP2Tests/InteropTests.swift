import Foundation
import Glibc
import HTTPCore
import IOCore
import Testing

@testable import HTTP2

/// A minimal blocking socket driver (test-only; the real one lives in Server) so real
/// clients — curl, nghttp, h2load, all built on the system's libnghttp2 — can talk to
/// `HTTP2Connection` over TCP with prior knowledge. One connection at a time.
final class TestSocketServer: HTTP2ConnectionDelegate, @unchecked Sendable {
    let listenFD: Int32
    let port: UInt16
    var serviceRequested = false
    private let responder: TestResponder

    init(_ mode: TestResponder.Mode) {
        responder = TestResponder(mode)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let size = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) }
        }
        listen(fd, 16)
        var len = size
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        listenFD = fd
        port = UInt16(bigEndian: addr.sin_port)
    }

    deinit { close(listenFD) }

    func http2ConnectionNeedsService(_ connection: HTTP2Connection) { serviceRequested = true }
    func http2Connection(_ c: HTTP2Connection, finished r: HTTPRequest, response: HTTPResponse, bytesRead: Int64) {}

    /// Serves `count` connections in turn on a background thread.
    func start(connections count: Int) {
        let t = Thread { [self] in
            for _ in 0..<count {
                let fd = accept(listenFD, nil, nil)
                if fd < 0 { return }
                serve(fd)
                close(fd)
            }
        }
        t.start()
    }

    private func serve(_ fd: Int32) {
        let input = ByteBuffer(capacity: 16384)
        let output = ByteBuffer(capacity: 16384)
        let conn = HTTP2Connection(
            input: input, output: output, dateCache: DateCache(), connectionInfo: ConnectionInfo(), responder: responder)
        conn.delegate = self
        var action = conn.start()
        while true {
            while !output.isEmpty {
                let n = output.readable.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return }
                output.consume(n)
            }
            switch action {
            case .close: return
            case .flushAndClose:
                shutdown(fd, Int32(SHUT_WR))
                return
            case .wait:
                action = conn.resume()
                continue
            case .readMore, .flush:
                break
            }
            if serviceRequested {
                serviceRequested = false
                action = conn.resume()
                continue
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 5000) <= 0 { return }
            input.reserveWritable(16384)
            let n = recv(fd, input.writePointer, input.writableBytes, 0)
            if n <= 0 {
                action = conn.peerClosed()
            } else {
                input.commit(n)
                action = conn.receive()
            }
        }
    }
}

/// Runs a command; returns (status, stdout).
func runTool(_ args: [String], stdin: Data? = nil) -> (Int32, Data) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    if let stdin {
        let inp = Pipe()
        p.standardInput = inp
        try? p.run()
        inp.fileHandleForWriting.write(stdin)
        try? inp.fileHandleForWriting.close()
    } else {
        try? p.run()
    }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, data)
}

private let hasTools = FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")
    && FileManager.default.isExecutableFile(atPath: "/usr/bin/h2load")

/// Real clients over TCP (h2c prior knowledge). Enabled where curl and h2load exist.
@Suite(.enabled(if: hasTools), .serialized) struct InteropTests {
    static let big = [UInt8](repeating: UInt8(ascii: "b"), count: 1 << 20)

    static func router() -> TestResponder.Mode {
        .custom { req, res in
            switch req.pathString {
            case "/big":
                InteropTests.big.withUnsafeBytes { res.send(body: $0) }
                return .done
            case "/echo":
                guard let src = req.bodySource else {
                    res.send("no body")
                    return .done
                }
                let c = EchoReader(response: res, source: src)
                src.startReading(c)
                return .pending
            default:
                res.fields.append(.contentType, "text/plain; charset=utf-8")
                res.send("Hello world\n")
                return .done
            }
        }
    }

    @Test func curlPriorKnowledge() {
        let s = TestSocketServer(InteropTests.router())
        s.start(connections: 1)
        let (status, out) = runTool(["curl", "-sS", "--http2-prior-knowledge", "-i", "http://127.0.0.1:\(s.port)/"])
        let text = String(decoding: out, as: UTF8.self)
        #expect(status == 0)
        #expect(text.hasPrefix("HTTP/2 200"))
        #expect(text.contains("server: Berth"))
        #expect(text.hasSuffix("Hello world\n"))
    }

    @Test func curlLargeDownloadAndUpload() {
        let s = TestSocketServer(InteropTests.router())
        s.start(connections: 2)
        let (st1, big) = runTool(["curl", "-sS", "--http2-prior-knowledge", "http://127.0.0.1:\(s.port)/big"])
        #expect(st1 == 0)
        #expect(big.count == 1 << 20)
        let body = Data((0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let (st2, echoed) = runTool(
            ["curl", "-sS", "--http2-prior-knowledge", "--data-binary", "@-", "http://127.0.0.1:\(s.port)/echo"],
            stdin: body)
        #expect(st2 == 0)
        #expect(echoed == body)
    }

    @Test func h2loadManyConcurrentStreams() {
        let s = TestSocketServer(InteropTests.router())
        s.start(connections: 1)
        let (status, out) = runTool(["h2load", "-n", "2000", "-c", "1", "-m", "100", "http://127.0.0.1:\(s.port)/"])
        let text = String(decoding: out, as: UTF8.self)
        #expect(status == 0)
        #expect(text.contains("2000 succeeded, 0 failed, 0 errored"))
    }
}

/// Echoes a request body back as a streamed response, respecting flow control.
final class EchoReader: RequestBodyReader, ResponseFlowObserver {
    let response: HTTPResponse
    let source: any RequestBodySource
    var started = false

    init(response: HTTPResponse, source: any RequestBodySource) {
        self.response = response
        self.source = source
    }

    func requestBody(_ bytes: UnsafeRawBufferPointer) {
        if !started {
            started = true
            response.sendHead(contentLength: nil)
            response.flowControl?.setFlowObserver(self, for: response)
        }
        response.write(bytes)
        if response.flowControl?.isResponseWritable == false { source.pauseReading() }
    }

    func requestBodyFinished() {
        if !started { response.sendHead(contentLength: 0) }
        response.finish()
    }

    func requestBodyFailed(_ error: RequestBodyError) {
        if !response.headSent { response.sendEmpty() } else if !response.finished { response.finish() }
    }

    func responseWritable() { source.resumeReading() }
    func responseAborted() {}
}

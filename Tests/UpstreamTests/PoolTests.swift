#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import EventLoop
import HTTPCore
import IOCore
import Synchronization
import Testing

@testable import Upstream

/// A response sink that records what a handler sent (always writable).
final class RecordingSink: ResponseSink, ResponseFlowControl, @unchecked Sendable {
    var status = 0
    var fields: [(String, String)] = []
    var body: [UInt8] = []
    var finished = false
    var aborted = false
    let done = DispatchSemaphore(value: 0)

    func sendComplete(_ response: HTTPResponse, body: UnsafeRawBufferPointer) {
        record(response)
        self.body += body
        finished = true
        done.signal()
    }
    func sendHead(_ response: HTTPResponse, contentLength: Int64?) { record(response) }
    func sendBody(_ response: HTTPResponse, _ bytes: UnsafeRawBufferPointer) { body += bytes }
    func finish(_ response: HTTPResponse) {
        finished = true
        done.signal()
    }
    private func record(_ r: HTTPResponse) {
        status = r.status
        fields = r.fields.pairs
    }

    var isResponseWritable: Bool { true }
    func setFlowObserver(_ observer: (any ResponseFlowObserver)?, for response: HTTPResponse) {}
    func abortStreamedResponse(_ response: HTTPResponse) {
        aborted = true
    }
    func switchProtocols(_ response: HTTPResponse, to receiver: any UpgradeReceiver) -> Bool { false }
}

/// A blocking HTTP/1.1 backend on a thread: answers every request on a connection with
/// `conn=<n> req=<k>` (n counts accepted connections), keep-alive.
final class TinyBackend: @unchecked Sendable {
    let fd: Int32
    let port: Int
    let accepted = Atomic<Int>(0)

    init() {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        _ = SocketAddress(ip: "127.0.0.1", port: 0)!.withSockAddr { bind(s, $0, $1) }
        listen(s, 64)
        fd = s
        port = Socket.localAddress(s)!.port
        let me = self
        Thread.spawn { me.acceptLoop() }
    }

    private func acceptLoop() {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 { return }
            let n = accepted.wrappingAdd(1, ordering: .relaxed).newValue
            Thread.spawn { TinyBackend.serve(c, n) }
        }
    }

    private static func serve(_ c: Int32, _ n: Int) {
        var buf = [UInt8](repeating: 0, count: 65536)
        var pending: [UInt8] = []
        var k = 0
        while true {
            let r = buf.withUnsafeMutableBytes { read(c, $0.baseAddress, 65536) }
            if r <= 0 { break }
            pending += buf[0..<r]
            while let end = find(pending, Array("\r\n\r\n".utf8)) {
                pending.removeFirst(end + 4)
                k += 1
                let body = "conn=\(n) req=\(k)"
                let resp = "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\nServer: tiny\r\n\r\n\(body)"
                _ = Array(resp.utf8).withUnsafeBytes { write(c, $0.baseAddress, $0.count) }
            }
        }
        close(c)
    }

    static func find(_ h: [UInt8], _ n: [UInt8]) -> Int? {
        guard h.count >= n.count else { return nil }
        for i in 0...(h.count - n.count) where Array(h[i..<(i + n.count)]) == n { return i }
        return nil
    }

    func stop() { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
}

enum Thread {
    static func spawn(_ body: @escaping @Sendable () -> Void) {
        final class Box { let f: @Sendable () -> Void; init(_ f: @escaping @Sendable () -> Void) { self.f = f } }
        var t = pthread_t()
        let p = Unmanaged.passRetained(Box(body)).toOpaque()
        pthread_create(&t, nil, { arg in
            Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue().f()
            return nil
        }, p)
        pthread_detach(t)
    }
}

/// Runs an event loop on its own thread for the test.
final class LoopThread: @unchecked Sendable {
    let loop: EventLoop
    init() throws {
        loop = try EventLoop()
        let l = loop
        Thread.spawn { l.run() }
    }
    deinit { loop.stop() }

    /// Proxies one GET through `proxy` on the loop and waits for the response.
    func proxyGET(_ proxy: ReverseProxy, _ target: String = "/", method: String = "GET") -> RecordingSink {
        let sink = RecordingSink()
        let box = LoopBoxes(sink: sink, proxy: proxy, target: target, method: method)
        loop.execute {
            let req = makeRequest(box.method, box.target)
            let resp = HTTPResponse(sink: box.sink)
            box.keep = (req, resp)
            _ = box.proxy.handle(req, resp)
        }
        _ = sink.done.wait(timeout: .now() + 10)
        return sink
    }
}

final class LoopBoxes: @unchecked Sendable {
    let sink: RecordingSink
    let proxy: ReverseProxy
    let target: String
    let method: String
    var keep: (HTTPRequest, HTTPResponse)?
    init(sink: RecordingSink, proxy: ReverseProxy, target: String, method: String) {
        self.sink = sink
        self.proxy = proxy
        self.target = target
        self.method = method
    }
}

@Suite("Pooling and failures against a real socket", .serialized)
struct PoolTests {
    func proxy(_ upstreams: [String], _ edit: (inout ProxyConfiguration) -> Void = { _ in }) -> ReverseProxy {
        var c = ProxyConfiguration()
        c.upstreams = upstreams.flatMap { try! UpstreamAddress.parse($0) }
        edit(&c)
        return ReverseProxy(c)
    }

    @Test func keepAliveReusesOneConnection() throws {
        let backend = TinyBackend()
        defer { backend.stop() }
        let lt = try LoopThread()
        let p = proxy(["127.0.0.1:\(backend.port)"])
        for k in 1...5 {
            let s = lt.proxyGET(p)
            #expect(s.status == 200)
            #expect(String(decoding: s.body, as: UTF8.self) == "conn=1 req=\(k)")
            #expect(s.fields.contains { $0.0 == "Server" && $0.1 == "tiny" })
            #expect(s.fields.contains { $0.0 == "Via" && $0.1 == "1.1 Berth" })
        }
        #expect(backend.accepted.load(ordering: .relaxed) == 1)
    }

    @Test func keepaliveOffOpensEachTime() throws {
        let backend = TinyBackend()
        defer { backend.stop() }
        let lt = try LoopThread()
        let p = proxy(["127.0.0.1:\(backend.port)"]) { $0.transport.keepAlive = false }
        for _ in 1...3 { #expect(lt.proxyGET(p).status == 200) }
        #expect(backend.accepted.load(ordering: .relaxed) == 3)
    }

    @Test func hostnameResolvesThroughTheResolver() throws {
        let backend = TinyBackend()
        defer { backend.stop() }
        let lt = try LoopThread()
        let s = lt.proxyGET(proxy(["localhost:\(backend.port)"]))
        #expect(s.status == 200)
    }

    @Test func refusedIs502() throws {
        let backend = TinyBackend()
        let port = backend.port
        backend.stop()
        let lt = try LoopThread()
        let s = lt.proxyGET(proxy(["127.0.0.1:\(port)"]))
        #expect(s.status == 502 && s.body.isEmpty)
    }

    @Test func unresolvableIs502() throws {
        let lt = try LoopThread()
        #expect(lt.proxyGET(proxy(["no-such-host.invalid:80"])).status == 502)
    }

    @Test func allUnhealthyIs503() throws {
        let lt = try LoopThread()
        let p = proxy(["127.0.0.1:1"])
        p.hosts[0].activeUnhealthy.store(true, ordering: .relaxed)
        #expect(lt.proxyGET(p).status == 503)
    }

    @Test func retriesMoveToAHealthyUpstream() throws {
        let backend = TinyBackend()
        defer { backend.stop() }
        let dead = TinyBackend()
        let deadPort = dead.port
        dead.stop()
        let lt = try LoopThread()
        let p = proxy(["127.0.0.1:\(deadPort)", "127.0.0.1:\(backend.port)"]) {
            $0.policy = .first
            $0.retries = 2
            $0.tryIntervalMilliseconds = 10
            $0.health.failDurationMilliseconds = 10_000
        }
        #expect(lt.proxyGET(p).status == 200)
        // The dead one is now passively unhealthy: the next request goes straight to the live one.
        #expect(p.hosts[0].fails.load(ordering: .relaxed) == 1)
        #expect(lt.proxyGET(p).status == 200)
    }

    @Test func unixSocketUpstream() throws {
        let path = "/tmp/berth-upstream-test-\(getpid()).sock"
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        _ = SocketAddress.unix(path: path).withSockAddr { bind(fd, $0, $1) }
        listen(fd, 8)
        defer { close(fd); unlink(path) }
        Thread.spawn {
            let c = accept(fd, nil, nil)
            var buf = [UInt8](repeating: 0, count: 4096)
            _ = buf.withUnsafeMutableBytes { read(c, $0.baseAddress, 4096) }
            let resp = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            _ = Array(resp.utf8).withUnsafeBytes { write(c, $0.baseAddress, $0.count) }
            close(c)
        }
        let lt = try LoopThread()
        let s = lt.proxyGET(proxy(["unix/\(path)"]))
        #expect(s.status == 201)
        #expect(String(decoding: s.body, as: UTF8.self) == "abc")
        #expect(!s.fields.contains { $0.0 == "Transfer-Encoding" })
    }

    @Test func truncatedBodyAbortsTheClient() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = SocketAddress(ip: "127.0.0.1", port: 0)!
        _ = a.withSockAddr { bind(fd, $0, $1) }
        listen(fd, 8)
        a = Socket.localAddress(fd)!
        defer { close(fd) }
        Thread.spawn {
            let c = accept(fd, nil, nil)
            var buf = [UInt8](repeating: 0, count: 4096)
            _ = buf.withUnsafeMutableBytes { read(c, $0.baseAddress, 4096) }
            let resp = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-this"
            _ = Array(resp.utf8).withUnsafeBytes { write(c, $0.baseAddress, $0.count) }
            close(c)
        }
        let lt = try LoopThread()
        let s = lt.proxyGET(proxy(["127.0.0.1:\(a.port)"]))
        #expect(s.status == 200)
        #expect(s.aborted)
        #expect(String(decoding: s.body, as: UTF8.self) == "only-this")
    }
}

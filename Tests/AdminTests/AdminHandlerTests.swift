import JSON
import Admin
import Config
import HTTPCore
import IOCore
import Testing

/// Records what a handler sent.
final class CapturingSink: ResponseSink {
    var status = 0
    var body: [UInt8] = []
    var headers: [(String, String)] = []
    func sendComplete(_ response: HTTPResponse, body: UnsafeRawBufferPointer) {
        status = response.status
        headers = response.fields.pairs
        self.body = Array(body)
    }
    func sendHead(_ response: HTTPResponse, contentLength: Int64?) { status = response.status }
    func sendBody(_ response: HTTPResponse, _ bytes: UnsafeRawBufferPointer) { body += Array(bytes) }
    func finish(_ response: HTTPResponse) {}
}

final class FakeControl: AdminControl {
    var loads: [(String, String?, Bool)] = []
    var stops = 0
    var outcome: AdminLoadOutcome = .loaded
    func load(body: [UInt8], contentType: String, sourceFile: String?, force: Bool) -> AdminLoadOutcome {
        loads.append((String(decoding: body, as: UTF8.self), sourceFile, force))
        return outcome
    }
    func currentConfig() -> JSONValue {
        .object([("admin", .object([("listen", .string("unix//run/admin.sock"))])), ("apps", .array([.int(1), .int(2)]))])
    }
    func stop() { stops += 1 }
    func health() -> (healthy: Bool, json: JSONValue) { (true, .object([("status", .string("ok"))])) }
    func upstreams() -> JSONValue { .array([.object([("address", .string("a:1")), ("num_requests", .int(0)), ("fails", .int(2))])]) }
}

func request(_ method: String, _ path: String, host: String? = nil, headers: [(String, String)] = []) -> HTTPRequest {
    let r = HTTPRequest()
    var m = method, p = path
    r.methodRange = m.withUTF8 { r.appendLine(UnsafeRawBufferPointer($0)) }
    r.method = m.withUTF8 { HTTPMethod.classify(UnsafeRawBufferPointer($0)) }
    r.targetRange = p.withUTF8 { r.appendLine(UnsafeRawBufferPointer($0)) }
    r.pathRange = r.targetRange
    if var h = host { r.authorityRange = h.withUTF8 { r.appendLine(UnsafeRawBufferPointer($0)) } }
    for (k, v) in headers { r.fields.append(name: k, value: v) }
    return r
}

func run(_ h: AdminHandler, _ r: HTTPRequest) -> CapturingSink {
    let sink = CapturingSink()
    let res = HTTPResponse(sink: sink)
    _ = h.handle(r, res)
    return sink
}

@Test func configTraversal() {
    let c = FakeControl()
    let h = AdminHandler(control: c, allowedHosts: [], allowedOrigins: [])
    let s = run(h, request("GET", "/config/admin/listen"))
    #expect(s.status == 200)
    #expect(String(decoding: s.body, as: UTF8.self) == "\"unix//run/admin.sock\"\n")
    let a = run(h, request("GET", "/config/apps/1"))
    #expect(String(decoding: a.body, as: UTF8.self) == "2\n")
    let bad = run(h, request("GET", "/config/apps/9"))
    #expect(bad.status == 400)
    #expect(String(decoding: bad.body, as: UTF8.self).contains("invalid traversal path at: config/apps/9"))
}

@Test func originRefusedOnUnixAndHostCheckedOnTCP() {
    let c = FakeControl()
    let unix = AdminHandler(control: c, allowedHosts: [], allowedOrigins: [])
    #expect(run(unix, request("GET", "/config/", headers: [("Origin", "http://evil")])).status == 403)
    #expect(run(unix, request("GET", "/config/", headers: [("Origin", "null")])).status == 400)
    #expect(run(unix, request("GET", "/config/", headers: [("Sec-Fetch-Mode", "no-cors")])).status == 400)
    let tcp = AdminHandler(control: c, allowedHosts: ["localhost:2019"], allowedOrigins: ["http://localhost:2019"])
    #expect(run(tcp, request("GET", "/config/", host: "localhost:2019")).status == 200)
    #expect(run(tcp, request("GET", "/config/", host: "evil.example:2019")).status == 403)
    #expect(run(tcp, request("GET", "/config/", host: "localhost:2019", headers: [("Origin", "http://localhost:2019")])).status == 200)
}

@Test func loadWithoutBodyAndMethodChecks() {
    let c = FakeControl()
    let h = AdminHandler(control: c, allowedHosts: [], allowedOrigins: [])
    let r = request("POST", "/load", headers: [("Content-Type", "text/caddyfile"), ("Cache-Control", "must-revalidate"),
                                               ("Caddy-Config-Source-File", "/etc/caddy/Caddyfile")])
    #expect(run(h, r).status == 200)
    #expect(c.loads.count == 1 && c.loads[0].1 == "/etc/caddy/Caddyfile" && c.loads[0].2)
    c.outcome = .failed(status: 400, message: "loading config: boom")
    let f = run(h, request("POST", "/load", headers: [("Content-Type", "text/caddyfile")]))
    #expect(f.status == 400)
    #expect(String(decoding: f.body, as: UTF8.self) == "{\"error\":\"loading config: boom\"}\n")
    #expect(run(h, request("GET", "/load")).status == 405)
    #expect(run(h, request("GET", "/stop")).status == 405)
    #expect(run(h, request("POST", "/stop")).status == 200 && c.stops == 1)
    #expect(run(h, request("GET", "/elsewhere")).status == 404)
}

@Test func reverseProxyUpstreamsIsGetOnly() {
    let c = FakeControl()
    let h = AdminHandler(control: c, allowedHosts: [], allowedOrigins: [])
    let s = run(h, request("GET", "/reverse_proxy/upstreams"))
    #expect(s.status == 200)
    #expect(String(decoding: s.body, as: UTF8.self) == "[{\"address\":\"a:1\",\"num_requests\":0,\"fails\":2}]\n")
    #expect(run(h, request("POST", "/reverse_proxy/upstreams")).status == 405)
    #expect(run(h, request("GET", "/reverse_proxy/upstreams/x")).status == 404)
    withExtendedLifetime(c) {}
}

#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import IOCore
import Testing

@testable import Upstream

/// A request as the HTTP/1 parser would leave it.
func makeRequest(_ method: String = "GET", _ target: String = "/a?b=1", host: String? = "proxy.test:8080",
                 fields: [(String, String)] = [], remote: String = "192.0.2.7", tls: Bool = false) -> HTTPRequest {
    let r = HTTPRequest()
    var m = method, t = target
    m.withUTF8 { r.methodRange = r.appendLine(UnsafeRawBufferPointer($0)) }
    r.method = m.withUTF8 { HTTPMethod.classify(UnsafeRawBufferPointer($0)) }
    t.withUTF8 { r.targetRange = r.appendLine(UnsafeRawBufferPointer($0)) }
    if let q = target.firstIndex(of: "?") {
        let pathLen = target.utf8.distance(from: target.startIndex, to: q)
        r.pathRange = r.targetRange.lowerBound..<(r.targetRange.lowerBound + pathLen)
        r.queryRange = (r.targetRange.lowerBound + pathLen + 1)..<r.targetRange.upperBound
    } else {
        r.pathRange = r.targetRange
    }
    if var h = host { h.withUTF8 { r.authorityRange = r.appendLine(UnsafeRawBufferPointer($0)) } }
    for (n, v) in fields { r.fields.append(name: n, value: v) }
    r.connection = ConnectionInfo(remote: SocketAddress(ip: remote, port: 5555), isTLS: tls)
    return r
}

func lines(_ b: ByteBuffer) -> [String] {
    String(decoding: b.readable, as: UTF8.self).components(separatedBy: "\r\n")
}

extension String {
    func components(separatedBy sep: String) -> [String] {
        var out: [String] = []
        var cur = ""
        var rest = Substring(self)
        while !rest.isEmpty {
            if rest.hasPrefix(sep) {
                out.append(cur)
                cur = ""
                rest = rest.dropFirst(sep.count)
            } else {
                cur.append(rest.first!)
                rest = rest.dropFirst()
            }
        }
        out.append(cur)
        return out
    }
}

@Suite("Request to the upstream (caddy-behavior §12)")
struct RequestHeadTests {
    func build(_ r: HTTPRequest, _ c: ProxyConfiguration = ProxyConfiguration(), upstream: String = "whoami:80") -> [String] {
        var f = HTTPFields()
        let up = try! UpstreamAddress.parse(upstream)[0]
        RequestHead.buildFields(r, c, upstream: up, upgrade: HopByHop.upgradeType(r.fields), into: &f, scratch: ByteBuffer())
        let out = ByteBuffer()
        RequestHead.encode(r, fields: f, framing: RequestHead.framing(r), into: out)
        return lines(out)
    }

    @Test func forwardedHeadersReplaceClientValues() {
        let r = makeRequest(fields: [
            ("User-Agent", "curl"), ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil"), ("Forwarded", "for=1.2.3.4"), ("X-Real-IP", "9.9.9.9"),
        ])
        let l = build(r)
        #expect(l[0] == "GET /a?b=1 HTTP/1.1")
        #expect(l[1] == "Host: proxy.test:8080")
        #expect(l.contains("User-Agent: curl"))
        #expect(l.contains("X-Forwarded-For: 192.0.2.7"))
        #expect(!l.contains("X-Forwarded-For: 6.6.6.6"))
        #expect(l.contains("X-Forwarded-Proto: http"))
        #expect(l.contains("X-Forwarded-Host: proxy.test:8080"))
        #expect(l.contains("Forwarded: for=1.2.3.4"))
        #expect(l.contains("X-Real-IP: 9.9.9.9"))
        #expect(l.contains("Via: 1.1 Berth"))
        #expect(l.suffix(2) == ["", ""])
    }

    @Test func trustedProxiesAppend() {
        var c = ProxyConfiguration()
        c.trustedProxies = [IPNetwork("192.0.2.0/24")!]
        let r = makeRequest(fields: [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "https")])
        let l = build(r, c)
        #expect(l.contains("X-Forwarded-For: 6.6.6.6, 192.0.2.7"))
        #expect(l.contains("X-Forwarded-Proto: https"))
    }

    @Test func hopByHopRemoved() {
        let r = makeRequest(fields: [
            ("Connection", "keep-alive, X-Secret"), ("X-Secret", "1"), ("Keep-Alive", "timeout=5"),
            ("Proxy-Authorization", "x"), ("TE", "trailers, gzip"), ("Trailer", "X"), ("Upgrade", "h2c"),
            ("Proxy-Connection", "x"), ("X-Keep", "yes"),
        ])
        let l = build(r)
        for bad in ["Connection", "X-Secret", "Keep-Alive", "Proxy-Authorization", "Trailer", "Upgrade", "Proxy-Connection"] {
            #expect(!l.contains { $0.hasPrefix(bad + ":") }, "\(bad)")
        }
        #expect(l.contains("Te: trailers"))
        #expect(l.contains("X-Keep: yes"))
    }

    @Test func websocketUpgradeKept() {
        let r = makeRequest(fields: [("Connection", "Upgrade"), ("Upgrade", "WebSocket"), ("Sec-WebSocket-Key", "k")])
        let l = build(r)
        #expect(l.contains("Connection: Upgrade"))
        #expect(l.contains("Upgrade: websocket"))
        #expect(l.contains("Sec-WebSocket-Key: k"))
    }

    @Test func framing() {
        #expect(build(makeRequest("POST")).contains("Content-Length: 0"))
        #expect(!build(makeRequest("GET")).contains { $0.hasPrefix("Content-Length") })
    }

    @Test func headerUpOperations() {
        var c = ProxyConfiguration()
        c.requestHeaderOps = [
            HeaderOperation(kind: .set, name: "Host", value: LiteralHeaderValue("backend")),
            HeaderOperation(kind: .delete, name: "X-Drop", value: nil),
            HeaderOperation(kind: .delete, name: "X-Pre-*", value: nil),
            HeaderOperation(kind: .add, name: "X-Add", value: LiteralHeaderValue("2")),
            HeaderOperation(kind: .setDefault, name: "X-Add", value: LiteralHeaderValue("nope")),
            HeaderOperation(kind: .replace(search: Array("foo".utf8)), name: "X-Rep", value: LiteralHeaderValue("bar")),
            HeaderOperation(kind: .set, name: "X-Forwarded-For", value: LiteralHeaderValue("override")),
        ]
        let r = makeRequest(fields: [("X-Drop", "1"), ("X-Pre-A", "1"), ("x-pre-b", "2"), ("X-Add", "1"), ("X-Rep", "a foo b foo")])
        let l = build(r, c)
        #expect(l.contains("Host: backend"))
        #expect(!l.contains("Host: proxy.test:8080"))
        #expect(!l.contains { $0.lowercased().hasPrefix("x-drop") || $0.lowercased().hasPrefix("x-pre-") })
        #expect(l.filter { $0.hasPrefix("X-Add") } == ["X-Add: 1", "X-Add: 2"])
        #expect(l.contains("X-Rep: a bar b bar"))
        #expect(l.contains("X-Forwarded-For: override"))
    }

    @Test func valuesCannotSplitTheHead() {
        var c = ProxyConfiguration()
        c.requestHeaderOps = [HeaderOperation(kind: .set, name: "X-Evil", value: LiteralHeaderValue("a\r\nInjected: 1"))]
        let l = build(makeRequest(), c)
        #expect(l.contains("X-Evil: a  Injected: 1"))
    }

    @Test func ipNetworks() {
        let n = IPNetwork("10.0.0.0/8")!
        #expect(n.contains(SocketAddress(ip: "10.1.2.3", port: 1)!))
        #expect(!n.contains(SocketAddress(ip: "11.1.2.3", port: 1)!))
        #expect(n.contains(SocketAddress(ip: "::ffff:10.9.9.9", port: 1)!))
        let v6 = IPNetwork("fd00::/8")!
        #expect(v6.contains(SocketAddress(ip: "fd12::1", port: 1)!))
        #expect(!v6.contains(SocketAddress(ip: "fe80::1", port: 1)!))
        #expect(IPNetwork("::1")!.contains(SocketAddress(ip: "::1", port: 1)!))
        #expect(IPNetwork("1.2.3.4/33") == nil && IPNetwork("nope") == nil)
    }
}

@Suite("Load balancing policies")
struct LoadBalancerTests {
    func hosts(_ n: Int) -> [UpstreamHost] {
        (0..<n).map { UpstreamHost(UpstreamAddress(endpoint: .tcp(host: "10.0.0.\($0)", port: 80))) }
    }

    func pick(_ lb: LoadBalancer, _ r: HTTPRequest, _ rng: FastRandom) -> UpstreamHost? {
        var cookie: [UInt8]? = nil
        return lb.select(LoadBalancer.Context(request: r, rng: rng), cookieToSet: &cookie)
    }

    @Test func roundRobinCycles() {
        let hs = hosts(3)
        let lb = LoadBalancer(policy: .roundRobin, hosts: hs, health: HealthOptions())
        let rng = FastRandom(seed: 1)
        let picks = (0..<6).map { _ in pick(lb, makeRequest(), rng)! }
        #expect(picks.map(\.slot) == (hs + hs).map(\.slot))
    }

    @Test func firstSkipsUnhealthy() {
        let hs = hosts(3)
        hs[0].activeUnhealthy.store(true, ordering: .relaxed)
        let lb = LoadBalancer(policy: .first, hosts: hs, health: HealthOptions())
        #expect(pick(lb, makeRequest(), FastRandom(seed: 1)) === hs[1])
        for h in hs { h.activeUnhealthy.store(true, ordering: .relaxed) }
        #expect(pick(lb, makeRequest(), FastRandom(seed: 1)) == nil)
    }

    @Test func passiveFailures() {
        let hs = hosts(2)
        var h = HealthOptions()
        h.failDurationMilliseconds = 1000
        h.maxFails = 2
        hs[0].fails.store(2, ordering: .relaxed)
        let lb = LoadBalancer(policy: .random, hosts: hs, health: h)
        let rng = FastRandom(seed: 7)
        for _ in 0..<20 { #expect(pick(lb, makeRequest(), rng) === hs[1]) }
    }

    @Test func leastConn() {
        let hs = hosts(3)
        hs[0].inFlight.store(5, ordering: .relaxed)
        hs[1].inFlight.store(1, ordering: .relaxed)
        hs[2].inFlight.store(3, ordering: .relaxed)
        let lb = LoadBalancer(policy: .leastConn, hosts: hs, health: HealthOptions())
        #expect(pick(lb, makeRequest(), FastRandom(seed: 3)) === hs[1])
    }

    @Test func randomCoversAll() {
        let hs = hosts(4)
        let lb = LoadBalancer(policy: .random, hosts: hs, health: HealthOptions())
        let rng = FastRandom(seed: 42)
        var seen = Set<Int>()
        for _ in 0..<200 { seen.insert(pick(lb, makeRequest(), rng)!.slot) }
        #expect(seen.count == 4)
    }

    @Test func hashPoliciesAreStable() {
        let hs = hosts(5)
        for policy in [SelectionPolicy.ipHash, .uriHash, .header("X-User"), .query("user")] {
            let lb = LoadBalancer(policy: policy, hosts: hs, health: HealthOptions())
            let rng = FastRandom(seed: 9)
            let r1 = makeRequest("GET", "/p?user=alice", fields: [("X-User", "alice")], remote: "198.51.100.1")
            let a = pick(lb, r1, rng)
            for _ in 0..<10 { #expect(pick(lb, r1, rng) === a, "\(policy)") }
            // Removing an unrelated host does not move the key (rendezvous hashing).
            let other = hs.first { $0 !== a }!
            other.activeUnhealthy.store(true, ordering: .relaxed)
            #expect(pick(lb, r1, rng) === a, "\(policy)")
            other.activeUnhealthy.store(false, ordering: .relaxed)
        }
    }

    @Test func cookieStickiness() {
        let hs = hosts(3)
        let lb = LoadBalancer(policy: .cookie(name: "lb", secret: "s"), hosts: hs, health: HealthOptions())
        var set: [UInt8]? = nil
        let first = lb.select(LoadBalancer.Context(request: makeRequest(), rng: FastRandom(seed: 5)), cookieToSet: &set)!
        let value = String(decoding: set!, as: UTF8.self)
        #expect(value == LoadBalancer.cookieToken(first, "s"))
        for seed in 1...10 {
            var again: [UInt8]? = nil
            let r = makeRequest(fields: [("Cookie", "a=1; lb=\(value)")])
            #expect(lb.select(LoadBalancer.Context(request: r, rng: FastRandom(seed: UInt64(seed))), cookieToSet: &again) === first)
            #expect(again == nil)
        }
    }
}

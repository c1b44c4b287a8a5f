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

    /// The direct encoder (no `header_up`, no `trusted_proxies`) writes exactly the bytes of
    /// `buildFields` + `encode`.
    @Test func directEncodingMatchesFieldList() {
        func viaFields(_ r: HTTPRequest, _ c: ProxyConfiguration, _ up: UpstreamAddress) -> String {
            var f = HTTPFields()
            RequestHead.buildFields(r, c, upstream: up, upgrade: HopByHop.upgradeType(r.fields), into: &f, scratch: ByteBuffer())
            let out = ByteBuffer()
            RequestHead.encode(r, fields: f, framing: RequestHead.framing(r), into: out)
            return String(decoding: out.readable, as: UTF8.self)
        }
        func direct(_ r: HTTPRequest, _ c: ProxyConfiguration, _ up: UpstreamAddress) -> String {
            var withUpstream = c
            withUpstream.upstreams = [up]
            let proxy = ReverseProxy(withUpstream)
            let out = ByteBuffer()
            RequestHead.encodeDirect(r, proxy: proxy, upstream: proxy.hosts[0], upgrade: HopByHop.upgradeType(r.fields), framing: RequestHead.framing(r), into: out)
            return String(decoding: out.readable, as: UTF8.self)
        }
        let tls = makeRequest("PUT", "/x", host: "h.test", fields: [("Content-Length", "0")], tls: true)
        let http10 = makeRequest("GET", "/", fields: [("User-Agent", "old")])
        http10.version = .http1_0
        let v6 = makeRequest("POST", "/v6", fields: [("Content-Type", "a")], remote: "2001:db8::1")
        let requests: [HTTPRequest] = [
            makeRequest(),
            makeRequest(fields: [
                ("User-Agent", "curl"), ("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-Host", "evil"), ("Forwarded", "for=1.2.3.4"), ("Host", "dup"),
            ]),
            makeRequest(fields: [
                ("Connection", "keep-alive, X-Secret"), ("X-Secret", "1"), ("Keep-Alive", "timeout=5"),
                ("Proxy-Authorization", "x"), ("TE", "trailers, gzip"), ("Trailer", "X"), ("Upgrade", "h2c"),
                ("Proxy-Connection", "x"), ("X-Keep", "yes"), ("X-Bad\u{1}Name", "v"), ("X-Ctl", "a\rb\nc\u{0}d"),
            ]),
            makeRequest(fields: [("Connection", "Upgrade"), ("Upgrade", "WebSocket"), ("Sec-WebSocket-Key", "k")]),
            makeRequest("GET", "/nohost", host: nil),
            makeRequest("POST"), tls, http10, v6,
        ]
        var via = ProxyConfiguration()
        via.viaName = "Edge\r\nX: 1"
        for c in [ProxyConfiguration(), via] {
            #expect(RequestHead.canEncodeDirectly(c))
            for up in ["whoami:80", "unix//run/app.sock"] {
                let a = try! UpstreamAddress.parse(up)[0]
                for r in requests {
                    let expected = viaFields(r, c, a)
                    #expect(direct(r, c, a) == expected)
                    #expect(expected.hasSuffix("\r\n\r\n"))
                }
            }
        }
        var ops = ProxyConfiguration()
        ops.requestHeaderOps = [HeaderOperation(kind: .delete, name: "X-A", value: nil)]
        var trusted = ProxyConfiguration()
        trusted.trustedProxies = [IPNetwork("10.0.0.0/8")!]
        #expect(!RequestHead.canEncodeDirectly(ops) && !RequestHead.canEncodeDirectly(trusted))
    }

    /// The upstream's head is filtered in place after the response's own fields, dropping the
    /// same fields as copying it would.
    @Test func inPlaceHopByHopMatchesCopy() {
        let heads: [[(String, String)]] = [
            [("Server", "nginx"), ("Date", "d"), ("Content-Type", "text/plain"), ("Content-Length", "12"), ("Connection", "keep-alive")],
            [("Connection", "close, X-Private"), ("X-Private", "1"), ("x-private", "2"), ("X-Public", "3"), ("Keep-Alive", "timeout=5"),
             ("Transfer-Encoding", "chunked"), ("Trailer", "X-Sum"), ("Alt-Svc", "h3"), ("Proxy-Authenticate", "Basic"),
             ("Upgrade", "x"), ("Te", "trailers"), ("Set-Cookie", "a=b")],
            [("X-Only", "1")],
            [],
        ]
        for head in heads {
            var upstream = HTTPFields()
            for (n, v) in head { upstream.append(name: n, value: v) }
            var copied = HTTPFields()
            copied.append(name: "Alt-Svc", value: "ours")
            copied.append(name: "X-Private", value: "ours too")
            HopByHop.copy(upstream, into: &copied) { _ in false }
            var inPlace = HTTPFields()
            inPlace.append(name: "Alt-Svc", value: "ours")
            inPlace.append(name: "X-Private", value: "ours too")
            let base = inPlace.count
            for (n, v) in head { inPlace.append(name: n, value: v) }
            HopByHop.removeHopByHop(&inPlace, from: base)
            #expect(inPlace.pairs.map { "\($0.0): \($0.1)" } == copied.pairs.map { "\($0.0): \($0.1)" })
        }
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

#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import IOCore

/// Caddy's `method` matcher: exact, case-sensitive method names.
package struct MethodMatcher: RequestMatcher {
    let methods: [[UInt8]]
    package init(_ methods: [String]) { self.methods = methods.map { Array($0.utf8) } }
    package func matches(_ request: HTTPRequest) -> Bool {
        request.withLineBytes(request.methodRange) { m in methods.contains { $0.elementsEqual(m) } }
    }
}

/// Caddy's `header` request matcher (`matchers.go` MatchHeader): every field must match; a
/// field matches when one of its values matches one of the patterns; `!Field` requires
/// absence; `Host` is the request's host (authority).
package struct HeaderMatcher: RequestMatcher {
    let conditions: [HeaderFieldCondition]
    package init(_ conditions: [HeaderFieldCondition]) { self.conditions = conditions }
    package func matches(_ request: HTTPRequest) -> Bool {
        for c in conditions {
            if c.name.utf8.count == 4, c.name.lowercased() == "host" {
                let ok: Bool
                if let a = request.authorityRange, !a.isEmpty {
                    ok = request.withLineBytes(a) { h in c.matches(HTTPFields(), extraValue: h) }
                } else {
                    ok = c.matches(request.fields)
                }
                if !ok { return false }
                continue
            }
            if !c.matches(request.fields) { return false }
        }
        return true
    }
}

/// Stores regexp captures as Caddy does (`MatchRegexp.Match`): `http.regexp.NAME.N`,
/// `http.regexp.N`, and the same with group names instead of numbers.
enum RegexCaptures {
    static func store(_ re: Regex, _ name: String, _ input: UnsafeRawBufferPointer, _ caps: UnsafeMutableBufferPointer<Int>,
                      _ request: HTTPRequest) {
        var longest = 0
        for g in re.groupNames { longest = max(longest, g?.utf8.count ?? 0) }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 64 + name.utf8.count + longest) { key in
            func setKey(_ parts: (UnsafeMutableBufferPointer<UInt8>) -> Int, _ g: Int) {
                let n = parts(key)
                let value = caps[2 * g] >= 0 ? UnsafeRawBufferPointer(rebasing: input[caps[2 * g]..<caps[2 * g + 1]]) : UnsafeRawBufferPointer(start: nil, count: 0)
                request.vars.set(UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: key[0..<n])), value)
            }
            func write(_ s: StaticString, _ at: Int) -> Int {
                for k in 0..<s.utf8CodeUnitCount { key[at + k] = s.utf8Start[k] }
                return at + s.utf8CodeUnitCount
            }
            func write(_ s: String, _ at: Int) -> Int {
                var i = at
                for b in s.utf8 where i < key.count { key[i] = b; i += 1 }
                return i
            }
            func write(int v: Int, _ at: Int) -> Int {
                var digits = 1, t = v
                while t >= 10 { t /= 10; digits += 1 }
                var x = v
                for k in stride(from: digits - 1, through: 0, by: -1) {
                    key[at + k] = UInt8(x % 10) + 0x30
                    x /= 10
                }
                return at + digits
            }
            for g in 0..<re.groupCount {
                if !name.isEmpty {
                    setKey({ _ in write(int: g, write(".", write(name, write("http.regexp.", 0)))) }, g)
                }
                setKey({ _ in write(int: g, write("http.regexp.", 0)) }, g)
                if let gn = re.groupNames[g] {
                    if !name.isEmpty { setKey({ _ in write(gn, write(".", write(name, write("http.regexp.", 0)))) }, g) }
                    setKey({ _ in write(gn, write("http.regexp.", 0)) }, g)
                }
            }
        }
    }
}

/// Caddy's `path_regexp` matcher: the regexp against the cleaned, decoded path.
package struct PathRegexpMatcher: RequestMatcher {
    let regex: Regex
    let name: String
    package init(_ regex: Regex, name: String) {
        self.regex = regex
        self.name = name
    }
    package func matches(_ request: HTTPRequest) -> Bool {
        let s = request.scratch
        s.clear()
        request.withLineBytes(request.pathRange) { URLDecoding.appendDecodedPath($0, into: s) }
        let dn = s.writerIndex
        s.reserveWritable(dn + 4)  // cleaning appends at most dn + 2 bytes: no move
        let decoded = UnsafeRawBufferPointer(start: s.base, count: dn)
        CleanPath.clean(decoded, mergeSlashes: true, into: s)
        let path = UnsafeRawBufferPointer(start: s.base + dn, count: s.writerIndex - dn)
        return regex.withCaptures { caps in
            guard regex.match(path, captures: caps) else { return false }
            RegexCaptures.store(regex, name, path, caps, request)
            return true
        }
    }
}

/// Caddy's `header_regexp` matcher: for each field, one of its values must match.
package struct HeaderRegexpMatcher: RequestMatcher {
    let fields: [(name: String, regex: Regex)]
    let name: String
    package init(fields: [(name: String, regex: Regex)], name: String) {
        self.fields = fields
        self.name = name
    }
    package func matches(_ request: HTTPRequest) -> Bool {
        for f in fields {
            var matched = false
            func tryValue(_ v: UnsafeRawBufferPointer) {
                if matched { return }
                f.regex.withCaptures { caps in
                    if f.regex.match(v, captures: caps) {
                        RegexCaptures.store(f.regex, name, v, caps, request)
                        matched = true
                    }
                }
            }
            if f.name.lowercased() == "host", let a = request.authorityRange {
                request.withLineBytes(a) { tryValue($0) }
            } else {
                withBytes(f.name) { nb in
                    for i in request.fields.entries.indices where !matched {
                        request.fields.withField(i) { n, v in
                            if Template.equalsIgnoringCase(n, nb) { tryValue(v) }
                        }
                    }
                }
            }
            if !matched { return false }
        }
        return true
    }
}

/// Caddy's `query` matcher: every configured key must be present with one of its values
/// (`*` any); no keys configured means "no query at all"; a malformed query never matches.
package struct QueryMatcher: RequestMatcher {
    let pairs: [(key: [UInt8], values: [[UInt8]])]
    package init(_ pairs: [(String, [String])]) {
        self.pairs = pairs.map { (Array($0.0.utf8), $0.1.map { Array($0.utf8) }) }
    }
    package func matches(_ request: HTTPRequest) -> Bool {
        let q = request.queryRange
        if pairs.isEmpty {
            guard let q, !q.isEmpty else { return true }
            var any = false
            _ = request.withLineBytes(q) { qb in QueryString.forEachPair(qb) { _, _ in any = true } }
            return !any
        }
        guard let q else { return false }
        return request.withLineBytes(q) { qb in
            withUnsafeTemporaryAllocation(of: Bool.self, capacity: pairs.count) { found in
                for k in 0..<pairs.count { found[k] = false }
                let ok = QueryString.forEachPair(qb) { key, value in
                    for (k, p) in pairs.enumerated() where !found[k] && key.elementsEqual(p.key) {
                        if p.values.contains(where: { $0 == [UInt8(ascii: "*")] || value.elementsEqual($0) }) { found[k] = true }
                    }
                }
                guard ok else { return false }
                for k in 0..<pairs.count where !found[k] { return false }
                return true
            }
        }
    }
}

/// Caddy's `protocol` matcher.
package struct ProtocolMatcher: RequestMatcher {
    let proto: String
    package init(_ proto: String) { self.proto = proto }
    package func matches(_ request: HTTPRequest) -> Bool {
        let v = request.version
        switch proto {
        case "grpc":
            return request.fields.withValue(.contentType) { ct in
                ct.count >= 16 && ct.prefix(16).elementsEqual("application/grpc".utf8)
            } ?? false
        case "https": return request.connection.isTLS
        case "http": return !request.connection.isTLS
        case "http/1.0": return v == .http1_0
        case "http/1.0+": return true
        case "http/1.1": return v == .http1_1
        case "http/1.1+": return v != .http1_0
        case "http/2": return v == .http2
        case "http/2+": return v == .http2 || v == .http3
        case "http/3", "http/3+": return v == .http3
        default: return false
        }
    }
}

/// An IP prefix (CIDR) for `remote_ip` / `client_ip`.
package struct IPPrefix: Sendable, Equatable {
    let bytes: [UInt8]  // 4 or 16
    let bits: Int

    /// Parses `1.2.3.4`, `1.2.3.0/24`, `::1`, `fd00::/8` (Caddy's CIDRExpressionToPrefix).
    package init?(_ s: String) {
        var addr = s
        var bits: Int? = nil
        if let slash = s.firstIndex(of: "/") {
            addr = String(s[..<slash])
            guard let b = Int(s[s.index(after: slash)...]) else { return nil }
            bits = b
        }
        var a4 = in_addr()
        var a6 = in6_addr()
        if inet_pton(AF_INET, addr, &a4) == 1 {
            self.bytes = withUnsafeBytes(of: &a4) { Array($0) }
            guard (0...32).contains(bits ?? 32) else { return nil }
            self.bits = bits ?? 32
        } else if inet_pton(AF_INET6, addr, &a6) == 1 {
            self.bytes = withUnsafeBytes(of: &a6) { Array($0) }
            guard (0...128).contains(bits ?? 128) else { return nil }
            self.bits = bits ?? 128
        } else {
            return nil
        }
    }

    func contains(_ ip: UnsafeRawBufferPointer) -> Bool {
        guard ip.count == bytes.count else { return false }
        var left = bits
        var i = 0
        while left > 0 {
            let mask: UInt8 = left >= 8 ? 0xFF : UInt8(truncatingIfNeeded: 0xFF << (8 - left))
            if ip[i] & mask != bytes[i] & mask { return false }
            left -= 8
            i += 1
        }
        return true
    }

    /// Calls `body` with the address bytes of `a` (4 for IPv4 and v4-mapped IPv6, else 16).
    static func withIP<R>(_ a: SocketAddress?, _ body: (UnsafeRawBufferPointer) -> R) -> R? {
        switch a {
        case .v4(var s)?:
            return withUnsafeBytes(of: &s.sin_addr) { body($0) }
        case .v6(let s)?:
            let mapped = SocketAddress.isV4Mapped(s.sin6_addr)
            var addr = s.sin6_addr
            return withUnsafeBytes(of: &addr) { raw in
                mapped ? body(UnsafeRawBufferPointer(rebasing: raw[12..<16])) : body(raw)
            }
        default:
            return nil
        }
    }
}

/// Caddy's `remote_ip` and `client_ip` matchers (without trusted proxies the client IP is the
/// remote IP).
package struct RemoteIPMatcher: RequestMatcher {
    let prefixes: [IPPrefix]
    package init(_ prefixes: [IPPrefix]) { self.prefixes = prefixes }
    package func matches(_ request: HTTPRequest) -> Bool {
        IPPrefix.withIP(request.connection.remote) { ip in prefixes.contains { $0.contains(ip) } } ?? false
    }
}

/// Caddy's `not` matcher: true when none of the nested sets matches (each set ANDs).
package struct NotMatcher: RequestMatcher {
    let sets: [[any RequestMatcher]]
    package init(_ sets: [[any RequestMatcher]]) { self.sets = sets }
    package func matches(_ request: HTTPRequest) -> Bool {
        for set in sets where set.allSatisfy({ $0.matches(request) }) { return false }
        return true
    }
}


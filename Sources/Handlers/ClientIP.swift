#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import IOCore

/// Caddy's server-level client IP (`servers { trusted_proxies …; client_ip_headers …;
/// trusted_proxies_strict }`, `server.go` determineTrustedProxy / trustedRealClientIP): when the
/// peer is a trusted proxy, the client IP is read from the configured headers (default
/// `X-Forwarded-For`) — the left-most valid address, or with `strict` the right-most address
/// that is not itself a trusted proxy. It is stored as the request variable `client_ip`, which
/// the `client_ip` matcher, `{client_ip}` and the access log read. Untrusted peers: the remote IP.
package struct ClientIPPolicy: Sendable {
    let trusted: [IPPrefix]
    let headers: [String]
    let strict: Bool
    static let key: StaticString = "client_ip"

    package init(trusted: [IPPrefix], headers: [String], strict: Bool) {
        self.trusted = trusted
        self.headers = headers.isEmpty ? ["X-Forwarded-For"] : headers
        self.strict = strict
    }

    /// Sets `client_ip` when the peer is trusted and a header names a valid address.
    package func apply(_ r: HTTPRequest) {
        guard !trusted.isEmpty,
            IPPrefix.withIP(r.connection.remote, { ip in trusted.contains { $0.contains(ip) } }) == true
        else { return }
        guard let ip = clientIP(r.fields) else { return }
        var text = ip
        text.withUTF8 { v in
            r.vars.set(UnsafeRawBufferPointer(start: ClientIPPolicy.key.utf8Start, count: ClientIPPolicy.key.utf8CodeUnitCount),
                       UnsafeRawBufferPointer(v))
        }
    }

    /// The address the headers name, normalized (nil: none valid).
    func clientIP(_ fields: HTTPFields) -> String? {
        for h in headers {
            var parts: [Substring] = []
            for (name, value) in fields.pairs where name.caseInsensitiveEquals(h) {
                parts += value.split(separator: ",", omittingEmptySubsequences: false)
            }
            if parts.isEmpty { continue }
            if strict {
                for part in parts.reversed() {
                    guard let (text, bytes) = ClientIPPolicy.parse(part) else { continue }
                    if bytes.withUnsafeBytes({ ip in trusted.contains { $0.contains(ip) } }) { continue }
                    return text
                }
            } else {
                for part in parts {
                    if let (text, _) = ClientIPPolicy.parse(part) { return text }
                }
            }
        }
        return nil
    }

    /// `host[:port]` or `[v6]:port`, zone dropped → (normalized text, address bytes).
    static func parse(_ part: Substring) -> (String, [UInt8])? {
        var host = String(part.trimmingSpaces)
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
            host = String(host[..<colon])
        }
        if let pct = host.firstIndex(of: "%") { host = String(host[..<pct]) }
        var a4 = in_addr()
        var a6 = in6_addr()
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        func text() -> String { String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        if inet_pton(AF_INET, host, &a4) == 1 {
            _ = inet_ntop(AF_INET, &a4, &buf, socklen_t(buf.count))
            return (text(), withUnsafeBytes(of: &a4) { Array($0) })
        }
        if inet_pton(AF_INET6, host, &a6) == 1 {
            let b = withUnsafeBytes(of: &a6) { Array($0) }
            // Go's netip prints v4-mapped addresses as ::ffff:a.b.c.d; matching uses the v4 bytes.
            _ = inet_ntop(AF_INET6, &a6, &buf, socklen_t(buf.count))
            let mapped = b[0..<10].allSatisfy { $0 == 0 } && b[10] == 0xFF && b[11] == 0xFF
            return (text(), mapped ? Array(b[12..<16]) : b)
        }
        return nil
    }
}

/// Caddy's `client_ip` matcher: the `client_ip` variable when a trusted proxy set it, else the
/// remote IP.
package struct ClientIPMatcher: RequestMatcher {
    let prefixes: [IPPrefix]
    package init(_ prefixes: [IPPrefix]) { self.prefixes = prefixes }
    package func matches(_ request: HTTPRequest) -> Bool {
        if let hit = request.vars.withValue(ClientIPPolicy.key, { v -> Bool in
            guard let (_, bytes) = ClientIPPolicy.parse(Substring(String(decoding: v, as: UTF8.self))) else { return false }
            return bytes.withUnsafeBytes { ip in prefixes.contains { $0.contains(ip) } }
        }) {
            return hit
        }
        return IPPrefix.withIP(request.connection.remote) { ip in prefixes.contains { $0.contains(ip) } } ?? false
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return s
    }
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        guard utf8.count == other.utf8.count else { return false }
        for (a, b) in zip(utf8, other.utf8) where (a | 0x20) != (b | 0x20) { return false }
        return true
    }
}

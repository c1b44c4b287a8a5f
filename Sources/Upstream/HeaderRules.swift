#if canImport(Glibc)
import Glibc
#endif
import HTTPCore
import IOCore

/// Hop-by-hop header handling shared by both directions (RFC 9110 §7.6.1: a proxy MUST
/// remove the fields named in Connection, and Connection itself, before forwarding).
///
/// The list is Caddy's `hopHeaders` (reverseproxy.go): Connection, Proxy-Connection,
/// Keep-Alive, Proxy-Authenticate, Proxy-Authorization, Te, Trailer, Transfer-Encoding,
/// Upgrade, Alt-Svc — plus every name listed in a Connection field.
package enum HopByHop {
    /// True for the fixed hop-by-hop names.
    @inline(__always)
    package static func isHopByHop(_ t: HeaderToken) -> Bool {
        switch t {
        case .connection, .proxyConnection, .keepAlive, .proxyAuthenticate, .proxyAuthorization, .te, .trailer,
            .transferEncoding, .upgrade, .altSvc:
            return true
        default:
            return false
        }
    }

    /// True for fields that are never forwarded inside a trailer section, either way (RFC
    /// 9110 §6.5.1: framing, routing, connection-specific and request-modifier fields).
    @inline(__always)
    package static func isForbiddenTrailer(_ t: HeaderToken) -> Bool {
        switch t {
        case .contentLength, .transferEncoding, .host, .connection, .keepAlive, .proxyConnection, .te, .trailer,
            .upgrade, .expect:
            return true
        default:
            return false
        }
    }

    /// Copies `source` into `dest` without hop-by-hop fields, without the names listed in
    /// Connection fields, and without fields whose token is in `skip`. Returns whether a TE
    /// field listed `trailers` (Caddy keeps `Te: trailers` towards the upstream).
    @discardableResult
    package static func copy(_ source: HTTPFields, into dest: inout HTTPFields, skipping skip: (HeaderToken) -> Bool) -> Bool {
        forEachForwarded(source, skipping: skip) { name, value, token in
            dest.append(name: name, value: value, token: token)
        }
    }

    /// Calls `body` with the name, value and token of every field of `source` that `copy`
    /// would copy, in order. Returns whether a TE field listed `trailers`.
    @inline(__always)
    package static func forEachForwarded(
        _ source: HTTPFields, skipping skip: (HeaderToken) -> Bool,
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer, HeaderToken) -> Void
    ) -> Bool {
        var teTrailers = false
        var hasConnection = false
        let listsNames = source.mayContain(.connection) || source.mayContain(.te)
        for i in source.entries.indices where listsNames {
            switch source.entries[i].token {
            case .connection:
                // Only names other than keep-alive and upgrade (which name fields that are
                // hop-by-hop anyway) need the per-field check: the common
                // `Connection: keep-alive` costs nothing more.
                source.withField(i) { _, v in
                    UpstreamBytes.forEachListElement(v) { el in
                        if !ASCII.equalsLowercase(el, "keep-alive") && !ASCII.equalsLowercase(el, "upgrade") {
                            hasConnection = true
                        }
                    }
                }
            case .te:
                source.withField(i) { _, v in
                    UpstreamBytes.forEachListElement(v) { el in
                        if ASCII.equalsLowercase(el, "trailers") { teTrailers = true }
                    }
                }
            default: break
            }
        }
        source.arena.withUnsafeBytes { ab in
            for e in source.entries {
                if isHopByHop(e.token) || skip(e.token) { continue }
                let name = UnsafeRawBufferPointer(rebasing: ab[Int(e.nameStart)..<Int(e.nameStart + e.nameLength)])
                if name.isEmpty { continue }
                if hasConnection && listedInConnection(source, name) { continue }
                let value = UnsafeRawBufferPointer(rebasing: ab[Int(e.valueStart)..<Int(e.valueStart + e.valueLength)])
                body(name, value, e.token)
            }
        }
        return teTrailers
    }

    /// Removes, in place, the hop-by-hop fields at `start` and after, and those named in a
    /// Connection field at `start` or after (the upstream's response head appended to a
    /// response's own fields: forwarded without copying its bytes again).
    package static func removeHopByHop(_ fields: inout HTTPFields, from start: Int) {
        guard start < fields.count else { return }
        var hasConnection = false
        let mayList = fields.mayContain(.connection)
        for i in start..<fields.count where mayList && fields.entries[i].token == .connection {
            fields.withField(i) { _, v in
                UpstreamBytes.forEachListElement(v) { el in
                    if !ASCII.equalsLowercase(el, "keep-alive") && !ASCII.equalsLowercase(el, "upgrade") {
                        hasConnection = true
                    }
                }
            }
        }
        if hasConnection {
            let original = fields
            fields.removeAll(from: start) { e, ab in
                if isHopByHop(e.token) { return true }
                let name = UnsafeRawBufferPointer(rebasing: ab[Int(e.nameStart)..<Int(e.nameStart + e.nameLength)])
                return listedInConnection(original, name, from: start)
            }
        } else {
            fields.removeAll(from: start) { e, _ in isHopByHop(e.token) }
        }
    }

    /// True when `name` appears in one of `fields`' Connection fields (at `start` or after).
    package static func listedInConnection(_ fields: HTTPFields, _ name: UnsafeRawBufferPointer, from start: Int = 0) -> Bool {
        var hit = false
        for i in start..<fields.entries.count where fields.entries[i].token == .connection {
            fields.withField(i) { _, v in
                UpstreamBytes.forEachListElement(v) { el in
                    if ASCII.equalsIgnoringCase(el, name) { hit = true }
                }
            }
            if hit { return true }
        }
        return false
    }

    /// The lower-cased `Upgrade` protocol when the request asks for one (Connection lists
    /// `upgrade`), as Go's `upgradeType`; nil otherwise.
    package static func upgradeType(_ fields: HTTPFields) -> [UInt8]? {
        var connectionUpgrade = false
        for i in fields.entries.indices where fields.entries[i].token == .connection {
            fields.withField(i) { _, v in
                UpstreamBytes.forEachListElement(v) { el in
                    if ASCII.equalsLowercase(el, "upgrade") { connectionUpgrade = true }
                }
            }
        }
        guard connectionUpgrade, let i = fields.firstIndex(.upgrade) else { return nil }
        return fields.withField(i) { _, v in
            v.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
        }
    }
}

/// An IP network for `trusted_proxies` (`10.0.0.0/8`, `::1/128`, or a bare address).
package struct IPNetwork: Sendable, Equatable, CustomStringConvertible {
    /// 4 or 16 address bytes.
    package let bytes: [UInt8]
    package let prefix: Int
    package let text: String

    package init?(_ text: String) {
        self.text = text
        var addr = text
        var prefix: Int? = nil
        if let slash = text.firstIndex(of: "/") {
            addr = String(text[..<slash])
            guard let p = Int(text[text.index(after: slash)...]) else { return nil }
            prefix = p
        }
        var a4 = in_addr()
        var a6 = in6_addr()
        if inet_pton(AF_INET, addr, &a4) == 1 {
            bytes = withUnsafeBytes(of: &a4) { Array($0) }
        } else if inet_pton(AF_INET6, addr, &a6) == 1 {
            bytes = withUnsafeBytes(of: &a6) { Array($0) }
        } else {
            return nil
        }
        let p = prefix ?? bytes.count * 8
        guard (0...(bytes.count * 8)).contains(p) else { return nil }
        self.prefix = p
    }

    package var description: String { text }

    /// True when `address` (v4, v6 or v4-mapped v6) is in the network.
    package func contains(_ address: SocketAddress) -> Bool {
        var ip: [UInt8]
        switch address {
        case .v4(var s): ip = withUnsafeBytes(of: &s.sin_addr) { Array($0) }
        case .v6(var s):
            ip = withUnsafeBytes(of: &s.sin6_addr) { Array($0) }
            if bytes.count == 4, SocketAddress.isV4Mapped(s.sin6_addr) { ip = Array(ip[12..<16]) }
        case .unix: return false
        }
        guard ip.count == bytes.count else { return false }
        var bits = prefix
        var i = 0
        while bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xFF : UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if ip[i] & mask != bytes[i] & mask { return false }
            bits -= 8
            i += 1
        }
        return true
    }
}

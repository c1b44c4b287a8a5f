#if canImport(Glibc)
import Glibc
#endif

/// An IPv4, IPv6 or unix-domain socket address.
package enum SocketAddress: Equatable, Sendable, CustomStringConvertible {
    case v4(sockaddr_in)
    case v6(sockaddr_in6)
    case unix(path: String)

    package static func == (a: SocketAddress, b: SocketAddress) -> Bool {
        switch (a, b) {
        case (.v4(var x), .v4(var y)):
            return memcmp(&x, &y, MemoryLayout<sockaddr_in>.size) == 0
        case (.v6(var x), .v6(var y)):
            return x.sin6_port == y.sin6_port
                && memcmp(&x.sin6_addr, &y.sin6_addr, MemoryLayout<in6_addr>.size) == 0
        case (.unix(let x), .unix(let y)):
            return x == y
        default:
            return false
        }
    }

    /// Reads an address the kernel wrote into `storage`.
    package init?(storage: UnsafeRawPointer, length: Int) {
        let family = storage.load(as: sa_family_t.self)
        switch Int32(family) {
        case AF_INET:
            guard length >= MemoryLayout<sockaddr_in>.size else { return nil }
            self = .v4(storage.loadUnaligned(as: sockaddr_in.self))
        case AF_INET6:
            guard length >= MemoryLayout<sockaddr_in6>.size else { return nil }
            self = .v6(storage.loadUnaligned(as: sockaddr_in6.self))
        case AF_UNIX:
            let pathOffset = MemoryLayout<sa_family_t>.size
            let maxLen = max(0, length - pathOffset)
            let p = storage.advanced(by: pathOffset).assumingMemoryBound(to: UInt8.self)
            var n = 0
            while n < maxLen, p[n] != 0 { n += 1 }
            if n == 0, maxLen > 0 {
                // Abstract (leading NUL) or unnamed.
                self = .unix(path: maxLen > 1 ? "@" + String(decoding: UnsafeBufferPointer(start: p + 1, count: maxLen - 1), as: UTF8.self) : "")
            } else {
                self = .unix(path: String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self))
            }
        default:
            return nil
        }
    }

    /// Parses a numeric IPv4 or IPv6 host (brackets allowed) and a port.
    package init?(ip: String, port: Int) {
        var host = ip
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard (0...65535).contains(port) else { return nil }
        var a4 = in_addr()
        if inet_pton(AF_INET, host, &a4) == 1 {
            var s = sockaddr_in()
            s.sin_family = sa_family_t(AF_INET)
            s.sin_port = in_port_t(UInt16(port).bigEndian)
            s.sin_addr = a4
            self = .v4(s)
            return
        }
        var a6 = in6_addr()
        if inet_pton(AF_INET6, host, &a6) == 1 {
            var s = sockaddr_in6()
            s.sin6_family = sa_family_t(AF_INET6)
            s.sin6_port = in_port_t(UInt16(port).bigEndian)
            s.sin6_addr = a6
            self = .v6(s)
            return
        }
        return nil
    }

    /// The address family constant.
    package var family: Int32 {
        switch self {
        case .v4: return AF_INET
        case .v6: return AF_INET6
        case .unix: return AF_UNIX
        }
    }

    /// The port, or 0 for unix sockets.
    package var port: Int {
        switch self {
        case .v4(let s): return Int(UInt16(bigEndian: s.sin_port))
        case .v6(let s): return Int(UInt16(bigEndian: s.sin6_port))
        case .unix: return 0
        }
    }

    /// Writes the textual IP (no brackets, no port) into `out`; IPv4-mapped IPv6 addresses are
    /// written as plain IPv4, like Go does for logs. Unix sockets write their path (or `@`).
    package func writeIP(into out: ByteBuffer) {
        switch self {
        case .v4(let s):
            SocketAddress.writeV4(s.sin_addr, into: out)
        case .v6(var s):
            if SocketAddress.isV4Mapped(s.sin6_addr) {
                var v4 = in_addr()
                withUnsafeBytes(of: &s.sin6_addr) { raw in
                    withUnsafeMutableBytes(of: &v4) { dst in
                        for i in 0..<4 { dst[i] = raw[12 + i] }
                    }
                }
                SocketAddress.writeV4(v4, into: out)
                return
            }
            out.reserveWritable(Int(INET6_ADDRSTRLEN))
            let ptr = UnsafeMutableRawPointer(out.writePointer).assumingMemoryBound(to: CChar.self)
            if inet_ntop(AF_INET6, &s.sin6_addr, ptr, socklen_t(INET6_ADDRSTRLEN)) != nil {
                out.commit(strlen(ptr))
            }
        case .unix(let path):
            out.append(string: path.isEmpty ? "@" : path)
        }
    }

    /// Dotted-quad IPv4 text (RFC 791) without inet_ntop, whose sprintf costs more than the
    /// rest of an X-Forwarded-For field on the proxy's hot path.
    @inline(__always)
    static func writeV4(_ a: in_addr, into out: ByteBuffer) {
        out.reserveWritable(15)
        var p = out.writePointer
        withUnsafeBytes(of: a) { raw in
            for i in 0..<4 {
                if i > 0 {
                    p.pointee = 0x2E
                    p += 1
                }
                let v = raw[i]
                if v >= 100 {
                    p.pointee = 0x30 &+ v / 100
                    p += 1
                }
                if v >= 10 {
                    p.pointee = 0x30 &+ (v / 10) % 10
                    p += 1
                }
                p.pointee = 0x30 &+ v % 10
                p += 1
            }
        }
        out.commit(p - out.writePointer)
    }

    /// True for `::ffff:a.b.c.d`.
    package static func isV4Mapped(_ a: in6_addr) -> Bool {
        var a = a
        return withUnsafeBytes(of: &a) { raw in
            for i in 0..<10 where raw[i] != 0 { return false }
            return raw[10] == 0xFF && raw[11] == 0xFF
        }
    }

    /// The textual IP (allocates; for cold paths).
    package var ipString: String {
        let b = ByteBuffer(capacity: 64)
        writeIP(into: b)
        return String(decoding: b.readable, as: UTF8.self)
    }

    package var description: String {
        switch self {
        case .v4: return "\(ipString):\(port)"
        case .v6(let s):
            return SocketAddress.isV4Mapped(s.sin6_addr) ? "\(ipString):\(port)" : "[\(ipString)]:\(port)"
        case .unix(let p): return "unix/\(p)"
        }
    }

    /// Calls `body` with a `sockaddr` pointer and length for this address.
    package func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        switch self {
        case .v4(var s):
            return try withUnsafePointer(to: &s) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        case .v6(var s):
            return try withUnsafePointer(to: &s) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        case .unix(let path):
            var s = sockaddr_un()
            s.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            let cap = MemoryLayout.size(ofValue: s.sun_path)
            withUnsafeMutableBytes(of: &s.sun_path) { raw in
                for (i, b) in bytes.prefix(cap - 1).enumerated() {
                    raw[i] = b == UInt8(ascii: "@") && i == 0 ? 0 : b
                }
            }
            let len = MemoryLayout<sa_family_t>.size + min(bytes.count, cap - 1) + (bytes.first == UInt8(ascii: "@") ? 0 : 1)
            return try withUnsafePointer(to: &s) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body($0, socklen_t(len))
                }
            }
        }
    }
}

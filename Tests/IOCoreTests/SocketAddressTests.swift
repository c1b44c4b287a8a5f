import Glibc
import Testing

@testable import IOCore

@Suite("SocketAddress")
struct SocketAddressTests {
    @Test func parsesIPv4() throws {
        let a = try #require(SocketAddress(ip: "127.0.0.1", port: 8080))
        guard case .v4(let s) = a else { Issue.record("not v4: \(a)"); return }
        #expect(s.sin_family == sa_family_t(AF_INET))
        #expect(UInt32(bigEndian: s.sin_addr.s_addr) == 0x7F00_0001)
        #expect(a.family == AF_INET)
        #expect(a.port == 8080)
        #expect(a.ipString == "127.0.0.1")
        #expect(a.description == "127.0.0.1:8080")
    }

    @Test(arguments: ["0.0.0.0", "255.255.255.255", "10.100.9.200", "1.20.199.5", "192.168.0.10"])
    func ipv4TextRoundTrips(_ text: String) throws {
        let a = try #require(SocketAddress(ip: text, port: 1))
        #expect(a.ipString == text)
        let mapped = try #require(SocketAddress(ip: "::ffff:" + text, port: 1))
        #expect(mapped.ipString == text)
    }

    @Test func parsesIPv6PlainAndBracketed() throws {
        let plain = try #require(SocketAddress(ip: "::1", port: 443))
        let bracketed = try #require(SocketAddress(ip: "[::1]", port: 443))
        #expect(plain == bracketed)
        #expect(plain.family == AF_INET6)
        #expect(plain.port == 443)
        #expect(plain.ipString == "::1")
        #expect(plain.description == "[::1]:443")
        let full = try #require(SocketAddress(ip: "2001:DB8:0:0:0:0:0:1", port: 0))
        #expect(full.ipString == "2001:db8::1")
        #expect(full.description == "[2001:db8::1]:0")
    }

    @Test func ipv4MappedIPv6IsWrittenAsIPv4() throws {
        let a = try #require(SocketAddress(ip: "::ffff:10.1.2.3", port: 5555))
        guard case .v6(let s) = a else { Issue.record("not v6"); return }
        #expect(SocketAddress.isV4Mapped(s.sin6_addr))
        #expect(a.ipString == "10.1.2.3")
        #expect(a.description == "10.1.2.3:5555")
        let b = ByteBuffer(capacity: 16)
        b.append("ip=")
        a.writeIP(into: b)
        #expect(String(decoding: b.readable, as: UTF8.self) == "ip=10.1.2.3")
        // Not mapped: ::1, ::, ::ffff:0:1 prefix differences.
        for text in ["::1", "::", "::fffe:1.2.3.4", "1::ffff:1.2.3.4"] {
            guard case .v6(let t) = try #require(SocketAddress(ip: text, port: 1)) else { continue }
            #expect(!SocketAddress.isV4Mapped(t.sin6_addr), "\(text)")
        }
    }

    @Test(arguments: ["", "localhost", "1.2.3", "256.0.0.1", "1.2.3.4.5", "::g", "[::1", "::1]", "[1.2.3.4]x", "fe80::1%lo", " 1.2.3.4"])
    func rejectsInvalidHosts(_ text: String) {
        #expect(SocketAddress(ip: text, port: 80) == nil)
    }

    @Test func bracketedIPv4IsAccepted() {
        // Brackets are stripped before parsing; harmless for IPv4.
        #expect(SocketAddress(ip: "[1.2.3.4]", port: 1)?.description == "1.2.3.4:1")
    }

    @Test func rejectsPortsOutOfRange() {
        #expect(SocketAddress(ip: "1.2.3.4", port: -1) == nil)
        #expect(SocketAddress(ip: "1.2.3.4", port: 65536) == nil)
        #expect(SocketAddress(ip: "1.2.3.4", port: 65535)?.port == 65535)
        #expect(SocketAddress(ip: "::", port: 0)?.port == 0)
    }

    @Test func equality() {
        #expect(SocketAddress(ip: "1.2.3.4", port: 1) == SocketAddress(ip: "1.2.3.4", port: 1))
        #expect(SocketAddress(ip: "1.2.3.4", port: 1) != SocketAddress(ip: "1.2.3.4", port: 2))
        #expect(SocketAddress(ip: "1.2.3.4", port: 1) != SocketAddress(ip: "1.2.3.5", port: 1))
        #expect(SocketAddress(ip: "::1", port: 1) != SocketAddress(ip: "::2", port: 1))
        #expect(SocketAddress(ip: "::ffff:1.2.3.4", port: 1) != SocketAddress(ip: "1.2.3.4", port: 1))
        #expect(SocketAddress.unix(path: "/a") == .unix(path: "/a"))
        #expect(SocketAddress.unix(path: "/a") != .unix(path: "/b"))
    }

    @Test func unixDescriptionAndWriteIP() {
        #expect(SocketAddress.unix(path: "/run/x.sock").description == "unix//run/x.sock")
        #expect(SocketAddress.unix(path: "/run/x.sock").port == 0)
        #expect(SocketAddress.unix(path: "/run/x.sock").family == AF_UNIX)
        #expect(SocketAddress.unix(path: "/run/x.sock").ipString == "/run/x.sock")
        #expect(SocketAddress.unix(path: "").ipString == "@")
    }

    @Test func storageInitRejectsShortAndUnknown() {
        var ss = sockaddr_storage()
        ss.ss_family = sa_family_t(AF_INET)
        withUnsafeBytes(of: &ss) { raw in
            #expect(SocketAddress(storage: raw.baseAddress!, length: MemoryLayout<sockaddr_in>.size - 1) == nil)
            #expect(SocketAddress(storage: raw.baseAddress!, length: MemoryLayout<sockaddr_in>.size) != nil)
        }
        ss.ss_family = sa_family_t(AF_INET6)
        withUnsafeBytes(of: &ss) { raw in
            #expect(SocketAddress(storage: raw.baseAddress!, length: MemoryLayout<sockaddr_in>.size) == nil)
        }
        ss.ss_family = sa_family_t(AF_PACKET)
        withUnsafeBytes(of: &ss) { raw in
            #expect(SocketAddress(storage: raw.baseAddress!, length: MemoryLayout<sockaddr_storage>.size) == nil)
        }
    }

    @Test func storageInitUnixForms() {
        var ss = sockaddr_storage()
        ss.ss_family = sa_family_t(AF_UNIX)
        // Unnamed: only the family.
        withUnsafeBytes(of: &ss) { raw in
            #expect(SocketAddress(storage: raw.baseAddress!, length: 2) == .unix(path: ""))
        }
        // Pathname, NUL-terminated inside a longer length.
        withUnsafeMutableBytes(of: &ss) { raw in
            for (i, b) in "/tmp/s".utf8.enumerated() { raw[2 + i] = b }
        }
        withUnsafeBytes(of: &ss) { raw in
            #expect(SocketAddress(storage: raw.baseAddress!, length: MemoryLayout<sockaddr_un>.size) == .unix(path: "/tmp/s"))
        }
        // Abstract: leading NUL, length bounds the name.
        withUnsafeMutableBytes(of: &ss) { raw in
            raw[2] = 0
            for (i, b) in "abc".utf8.enumerated() { raw[3 + i] = b }
        }
        withUnsafeBytes(of: &ss) { raw in
            #expect(SocketAddress(storage: raw.baseAddress!, length: 2 + 1 + 3) == .unix(path: "@abc"))
        }
    }

    /// Binds `address` with the given socket type and reads it back with getsockname.
    private func roundTrip(_ address: SocketAddress) throws -> SocketAddress {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        let owner = FileDescriptor(owning: fd)
        let rc = address.withSockAddr { sa, len in bind(owner.raw, sa, len) }
        try #require(rc == 0, "bind \(address): \(IOError.describe(errno))")
        var ss = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &ss) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(owner.raw, $0, &len) == 0 }
        }
        try #require(ok)
        return try #require(withUnsafeBytes(of: &ss) { SocketAddress(storage: $0.baseAddress!, length: Int(len)) })
    }

    @Test func withSockAddrRoundTripsIPv4() throws {
        let got = try roundTrip(try #require(SocketAddress(ip: "127.0.0.1", port: 0)))
        #expect(got.ipString == "127.0.0.1")
        #expect(got.port > 0)
        #expect(got == SocketAddress(ip: "127.0.0.1", port: got.port))
    }

    @Test func withSockAddrRoundTripsIPv6() throws {
        let probe = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        guard probe >= 0 else { return }  // no IPv6 in this sandbox
        close(probe)
        let got = try roundTrip(try #require(SocketAddress(ip: "::1", port: 0)))
        #expect(got.ipString == "::1")
        #expect(got.port > 0)
        #expect(got.description == "[::1]:\(got.port)")
    }

    @Test func withSockAddrRoundTripsUnixPathAndAbstract() throws {
        let path = "/tmp/berth-ioc-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        defer { unlink(path) }
        #expect(try roundTrip(.unix(path: path)) == .unix(path: path))
        let abstract = "@berth-ioc-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        #expect(try roundTrip(.unix(path: abstract)) == .unix(path: abstract))
    }

    @Test func withSockAddrLengths() throws {
        try #require(SocketAddress(ip: "1.2.3.4", port: 1)).withSockAddr { sa, len in
            #expect(Int(len) == MemoryLayout<sockaddr_in>.size)
            #expect(Int32(sa.pointee.sa_family) == AF_INET)
        }
        try #require(SocketAddress(ip: "::1", port: 1)).withSockAddr { sa, len in
            #expect(Int(len) == MemoryLayout<sockaddr_in6>.size)
            #expect(Int32(sa.pointee.sa_family) == AF_INET6)
        }
        SocketAddress.unix(path: "/ab").withSockAddr { _, len in #expect(Int(len) == 2 + 3 + 1) }
        SocketAddress.unix(path: "@ab").withSockAddr { _, len in #expect(Int(len) == 2 + 3) }
    }
}

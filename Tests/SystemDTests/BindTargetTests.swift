import Testing

@testable import SystemD

@Suite("Parsing bind addresses")
struct BindTargetTests {
    private let site = BindSite(location: "Caddyfile:1", address: "")

    @Test(arguments: [
        ("fd/3", BindTarget.stream(fd: 3)),
        ("fdgram/5", .datagram(fd: 5)),
        ("Fd/0x10", .stream(fd: 16)),
        ("fdname/https", .streamNamed("https", index: nil)),
        ("fdname/https/1", .streamNamed("https", index: 1)),
        ("fdgramname/quic", .datagramNamed("quic", index: nil)),
        ("fdgramname/quic/0", .datagramNamed("quic", index: 0)),
        ("fdname/caddy.socket", .streamNamed("caddy.socket", index: nil)),
        ("fdname/a/b/2", .streamNamed("a/b", index: 2)),
    ])
    func parsesTheFourForms(address: String, target: BindTarget) throws {
        #expect(try BindTarget.parse(address, site: site) == target)
    }

    @Test func canonicalSpelling() {
        #expect(BindTarget.stream(fd: 3).description == "fd/3")
        #expect(BindTarget.datagram(fd: 5).description == "fdgram/5")
        #expect(BindTarget.streamNamed("https", index: 1).description == "fdname/https/1")
        #expect(BindTarget.datagramNamed("quic", index: nil).description == "fdgramname/quic")
    }

    @Test func recognisesOnlyInheritedForms() {
        #expect(BindTarget.isInheritedAddress("fd/3"))
        #expect(BindTarget.isInheritedAddress("FDNAME/x"))
        #expect(!BindTarget.isInheritedAddress("unix//run/a.sock"))
        #expect(!BindTarget.isInheritedAddress("127.0.0.1"))
        #expect(!BindTarget.isInheritedAddress("fd3"))
    }

    /// Go: `strconv.ParseUint(s, 0, 64)`.
    @Test(arguments: [
        ("3", 3), ("10", 10), ("0", 0), ("00", 0), ("0x3", 3), ("0X1f", 31), ("0xFF", 255),
        ("0o17", 15), ("0O17", 15), ("017", 15), ("0b101", 5), ("0B11", 3), ("1_000", 1000),
        ("0x_1f", 31), ("0_7", 7), ("0b_1", 1), ("18446744073709551615", UInt64.max),
    ] as [(String, UInt64)])
    func goNumbers(text: String, value: UInt64) {
        #expect(GoUint.parse(text) == .success(value))
    }

    @Test(arguments: [
        "", "abc", "08", "09", "0x", "0b", "0o", "0b2", "0o8", "0xg", "_1", "1_", "1__0", "0x_",
        "-1", "+1", " 3", "3 ", "3:443", "1e3", "٣",
    ])
    func goSyntaxErrors(text: String) {
        #expect(GoUint.parse(text) == .failure(.syntax))
    }

    @Test(arguments: ["18446744073709551616", "0x10000000000000000", "99999999999999999999x"])
    func goRangeErrors(text: String) {
        #expect(GoUint.parse(text) == .failure(.outOfRange))
    }

    @Test func parseErrorsCarryTheSite() {
        let site = BindSite(location: "Caddyfile:6", address: "fd/abc")
        #expect(throws: BindError.invalidFileDescriptor(site, text: "abc", reason: .syntax)) {
            try BindTarget.parse("fd/abc", site: site)
        }
    }
}

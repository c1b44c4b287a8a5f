import IOCore
import Testing

@testable import TLS

/// `tls { client_auth }` in memory: each mode with no, a trusted and an untrusted client
/// certificate; trusted leaves; policies chosen by SNI; tickets never cross policies.
@Suite struct ClientAuthTests {
    /// A second CA whose leaves the policies below do not trust.
    static let rogueCA: LocalCA = try! LocalCA(directory: Fixtures.temporaryDirectory("rogue") + "/ca")
    static let rogueLeaf: TLSCertificate = try! rogueCA.issue(names: ["mallory.test"])
    static var trustedRootDER: [[UInt8]] {
        try! TLSClientAuthPolicy.derCertificates(pem: Fixtures.rootPEM, what: "root")
    }

    static func server(
        mode: TLSClientAuthMode?, names: [String] = [], cas: [[UInt8]] = trustedRootDER, leaves: [[UInt8]] = [],
        certs: [TLSCertificate] = [Fixtures.localhost], ring: TicketKeyRing = TicketKeyRing()
    ) throws -> TLSContext {
        let policy = try TLSClientAuthPolicy(mode: mode, serverNames: names, trustedCAs: cas, trustedLeaves: leaves)
        return try Fixtures.serverContext(certs, ticketKeys: ring) { $0.clientAuthPolicies = [policy] }
    }

    static func client(_ cert: TLSCertificate?, version: TLSVersion = .tls13) throws -> TLSContext {
        try Fixtures.clientContext {
            $0.certificate = cert
            $0.maximumVersion = version
        }
    }

    /// Handshake, then one byte each way (a TLS 1.3 server learns of a rejected client
    /// certificate only from the client's second flight).
    static func outcome(_ server: TLSContext, _ client: TLSContext, name: String = "localhost") throws -> Handshake {
        let hs = try Handshake(client: client, server: server, serverName: name)
        if hs.succeeded {
            _ = try? hs.send([1], from: hs.client)
            _ = try? hs.send([2], from: hs.server)
        }
        return hs
    }

    @Test(arguments: [TLSVersion.tls13, .tls12])
    func modesAcceptAndReject(version: TLSVersion) throws {
        // mode → (no certificate, trusted, untrusted) accepted?
        let table: [(TLSClientAuthMode?, [Bool])] = [
            (.request, [true, true, true]),
            (.require, [false, true, true]),
            (.verifyIfGiven, [true, true, false]),
            (.requireAndVerify, [false, true, false]),
            (nil, [false, true, false]),  // CAs given: Caddy's default is require_and_verify
        ]
        for (mode, expected) in table {
            let server = try Self.server(mode: mode)
            for (i, cert) in [nil, Fixtures.localhost, Self.rogueLeaf].enumerated() {
                let hs = try Self.outcome(server, Self.client(cert, version: version))
                let ok = hs.succeeded && hs.server.error == nil
                #expect(ok == expected[i], "mode \(String(describing: mode)) cert #\(i) \(version): \(String(describing: hs.server.error))")
                if ok {
                    #expect((hs.server.info?.clientCertificate != nil) == (cert != nil))
                }
            }
        }
    }

    @Test func certificateFactsAreCaddyShaped() throws {
        let hs = try Self.outcome(Self.server(mode: .requireAndVerify), Self.client(Fixtures.localhost))
        let c = try #require(hs.server.info?.clientCertificate)
        #expect(c.subject.isEmpty || !c.subject.contains("/"))  // RFC 2253, not OpenSSL's /CN= form
        #expect(c.issuer.contains("CN=") && c.issuer.contains("Intermediate"))
        #expect(c.fingerprint.count == 64 && c.fingerprint.allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(!c.serial.isEmpty && c.serial.allSatisfy(\.isNumber))
        #expect(c.pem.hasPrefix("-----BEGIN CERTIFICATE-----\n") && c.pem.hasSuffix("-----END CERTIFICATE-----\n"))
    }

    @Test func trustedLeavesOnly() throws {
        let trusted = TLSClientAuthPolicy.der(Fixtures.other.leaf)
        let server = try Self.server(mode: .require, cas: [], leaves: [trusted])
        #expect(try Self.outcome(server, Self.client(Fixtures.other)).server.error == nil)
        #expect(try Self.outcome(server, Self.client(Fixtures.localhost)).server.error != nil)
        #expect(try Self.outcome(server, Self.client(nil)).server.error != nil)  // leaves imply a certificate
    }

    @Test func policyFollowsSNI() throws {
        let server = try Self.server(
            mode: .require, names: ["*.example.org"], certs: [Fixtures.localhost, Fixtures.wildcard])
        // localhost: no policy, no certificate needed.
        let open = try Self.outcome(server, Self.client(nil))
        #expect(open.succeeded && open.server.error == nil)
        // a.example.org: required.
        let closed = try Self.outcome(server, Self.client(nil), name: "a.example.org")
        #expect(closed.server.error != nil)
        let withCert = try Self.outcome(server, Self.client(Fixtures.other), name: "a.example.org")
        #expect(withCert.server.error == nil && withCert.server.info?.clientCertificate != nil)
    }

    @Test(arguments: [TLSVersion.tls13, .tls12])
    func ticketsDoNotCrossPolicies(version: TLSVersion) throws {
        let ring = TicketKeyRing()
        let server = try Self.server(
            mode: .request, names: ["b.example.org"], certs: [Fixtures.wildcard], ring: ring)
        let client = try Self.client(nil, version: version)
        let first = try Self.outcome(server, client, name: "a.example.org")
        let session = try #require(first.client.connection.session)
        // Same (open) name: resumed.
        let again = try Handshake(client: client, server: server, serverName: "a.example.org", session: session)
        #expect(again.succeeded && again.server.info?.resumed == true)
        // The client-auth name: a full handshake, so the certificate request happens.
        let other = try Handshake(client: client, server: server, serverName: "b.example.org", session: session)
        #expect(other.server.info?.resumed != true)
    }

    @Test func badDERIsAClearError() {
        #expect(throws: TLSError.self) {
            _ = try TLSClientAuthPolicy(mode: nil, serverNames: [], trustedCAs: [[1, 2, 3]], trustedLeaves: [])
        }
    }

    @Test func serverNameExtensionParsing() {
        let ext: [UInt8] = [0, 12, 0, 0, 9] + Array("Localhost".utf8)
        #expect(ext.withUnsafeBufferPointer { ServerNameExtension.hostName($0) } == "localhost")
        let short: [UInt8] = [0, 20, 0, 0, 9] + Array("localhost".utf8)
        #expect(short.withUnsafeBufferPointer { ServerNameExtension.hostName($0) } == nil)
        let empty: [UInt8] = []
        #expect(empty.withUnsafeBufferPointer { ServerNameExtension.hostName($0) } == nil)
    }
}

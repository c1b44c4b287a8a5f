import IOCore
import Testing

@testable import TLS

@Suite struct SNITests {
    /// Serves a handshake with an unverifying client and returns the names on the certificate
    /// the server presented.
    func served(_ store: [TLSCertificate], defaultServerName: String? = nil, sni: String?, localAddress: String? = nil)
        throws -> [String]
    {
        let hs = try Handshake(
            client: Fixtures.clientContext(verify: false),
            server: Fixtures.serverContext(store, defaultServerName: defaultServerName),
            serverName: sni, localAddress: localAddress)
        #expect(hs.succeeded, "\(String(describing: hs.server.error))")
        let peer = try #require(hs.client.connection.peerCertificate)
        return peer.dnsNames + peer.ipAddresses
    }

    let all = [Fixtures.localhost, Fixtures.example, Fixtures.wildcard]

    @Test func exactNameSelectsItsCertificate() throws {
        #expect(try served(all, sni: "example.com") == ["example.com", "www.example.com"])
        #expect(try served(all, sni: "www.example.com") == ["example.com", "www.example.com"])
        #expect(try served(all, sni: "localhost").first == "localhost")
    }

    @Test func matchingIsCaseInsensitive() throws {
        #expect(try served(all, sni: "WWW.Example.COM") == ["example.com", "www.example.com"])
        #expect(try served(all, sni: "A.EXAMPLE.ORG") == ["*.example.org"])
    }

    @Test func wildcardCoversExactlyOneLabel() throws {
        #expect(try served(all, sni: "a.example.org") == ["*.example.org"])
        // Not the bare domain, not two labels: those get the default (the first certificate).
        #expect(try served(all, sni: "example.org").first == "localhost")
        #expect(try served(all, sni: "a.b.example.org").first == "localhost")
    }

    @Test func unknownOrMissingSNIGetsTheDefault() throws {
        #expect(try served(all, sni: "unknown.test").first == "localhost")
        #expect(try served(all, sni: nil).first == "localhost")
        #expect(try served(all, defaultServerName: "www.example.com", sni: nil) == ["example.com", "www.example.com"])
        #expect(try served(all, defaultServerName: "x.example.org", sni: "unknown.test") == ["*.example.org"])
    }

    @Test func noSNIPrefersTheCertificateForTheLocalIP() throws {
        let store = [Fixtures.example, Fixtures.localhost]
        #expect(try served(store, sni: nil, localAddress: "127.0.0.1").first == "localhost")
        #expect(try served(store, sni: nil, localAddress: "0:0::1").first == "localhost")
        #expect(try served(store, sni: nil, localAddress: "10.0.0.1").first == "example.com")
    }

    @Test func serverInfoReportsTheSNI() throws {
        let hs = try Handshake(
            client: Fixtures.clientContext(verify: false), server: Fixtures.serverContext(all),
            serverName: "Www.Example.com")
        #expect(hs.server.info?.serverName == "Www.Example.com")
    }

    @Test func emptyStoreAbortsWithInternalError() throws {
        let hs = try Handshake(client: Fixtures.clientContext(verify: false), server: Fixtures.serverContext([]))
        #expect(!hs.succeeded)
        #expect(hs.client.error?.hasReason("internal error") == true, "\(String(describing: hs.client.error))")
    }

    @Test func hotSwapReplacesTheCertificateForNewHandshakes() throws {
        let first = try Fixtures.ca.issue(names: ["swap.test"])
        let source = CertificateSource([Fixtures.localhost, first])
        let server = try TLSContext(server: TLSServerConfiguration(certificates: source))
        let client = try Fixtures.clientContext()

        let before = try Handshake(client: client, server: server, serverName: "swap.test")
        #expect(before.succeeded)
        #expect(before.client.connection.peerCertificate?.notAfter == first.notAfter)

        let renewed = try Fixtures.ca.issue(names: ["swap.test"], lifetime: 6 * 3600)
        source.update { $0.adding(renewed) }
        #expect(source.current.certificates.count == 2)  // `first` dropped, localhost kept
        #expect(source.current.certificates.contains { $0 === first } == false)

        let after = try Handshake(client: client, server: server, serverName: "swap.test")
        #expect(after.succeeded)
        #expect(after.client.connection.peerCertificate?.notAfter == renewed.notAfter)
        // The connection made before the swap still works.
        #expect(try before.send(Array("still here".utf8), from: before.client) == Array("still here".utf8))
    }

    @Test func oneSourceFeedsSeveralListeners() throws {
        let source = CertificateSource([Fixtures.example])
        let h1Only = try TLSContext(
            server: {
                var c = TLSServerConfiguration(certificates: source)
                c.applicationProtocols = [.http11]
                return c
            }())
        let both = try TLSContext(server: TLSServerConfiguration(certificates: source))
        source.replace(with: CertificateStore([Fixtures.localhost]))
        for server in [h1Only, both] {
            let hs = try Handshake(client: Fixtures.clientContext(), server: server)
            #expect(hs.succeeded)
        }
    }

    @Test func storeLookupUnit() {
        let store = CertificateStore([Fixtures.localhost, Fixtures.example, Fixtures.wildcard])
        #expect(store.match("EXAMPLE.COM.") === Fixtures.example)
        #expect(store.match("x.example.org") === Fixtures.wildcard)
        #expect(store.match(".example.org") == nil)
        #expect(store.match("example.org") == nil)
        #expect(store.match("127.0.0.1") === Fixtures.localhost)
        #expect(store.certificate(forServerName: "nope") === Fixtures.localhost)
        #expect(store.certificate(forServerName: "") === Fixtures.localhost)
        #expect(CertificateStore.empty.certificate(forServerName: "x") == nil)
        let later = CertificateStore([Fixtures.localhost, Fixtures.example], defaultServerName: "example.com")
        #expect(later.defaultCertificate === Fixtures.example)
        #expect(later.removing(Fixtures.example).defaultCertificate === Fixtures.localhost)
    }

    @Test func acmeTLSALPNChallengeGetsTheChallengeCertificate() throws {
        // RFC 8737 §3: the validation certificate carries id-pe-acmeIdentifier (critical) with
        // the SHA-256 of the key authorization, as an OCTET STRING.
        let now = Fixtures.localhost.notBefore + 60
        var b = X509Builder(commonName: nil, notBefore: now - 60, notAfter: now + 3600)
        b.dnsNames = ["example.com"]
        b.extraExtensions = [("1.3.6.1.5.5.7.1.31", true, [0x04, 0x20] + [UInt8](repeating: 0xAB, count: 32))]
        let challenge = try b.sign(key: TLSPrivateKey.generateECDSA(), issuer: nil)
        let challenges = CertificateSource([challenge])
        let server = try Fixtures.serverContext([Fixtures.example]) { $0.acmeChallengeCertificates = challenges }

        let acme = try Fixtures.clientContext(verify: false, protocols: [.acmeTLS1])
        let hs = try Handshake(client: acme, server: server, serverName: "example.com")
        #expect(hs.succeeded, "\(String(describing: hs.server.error))")
        #expect(hs.server.info?.applicationProtocol == "acme-tls/1")
        #expect(hs.client.connection.peerCertificate?.notAfter == challenge.notAfter)

        // A normal client on the same listener gets the real certificate and h2.
        let normal = try Handshake(client: Fixtures.clientContext(), server: server, serverName: "example.com")
        #expect(normal.succeeded)
        #expect(normal.server.info?.applicationProtocol == "h2")

        // No challenge for that name: the handshake is refused.
        let none = try Handshake(client: acme, server: server, serverName: "www.example.com")
        #expect(!none.succeeded)

        // A listener without challenges never speaks acme-tls/1.
        let plain = try Handshake(
            client: acme, server: Fixtures.serverContext([Fixtures.example]), serverName: "example.com")
        #expect(!plain.succeeded)
    }
}

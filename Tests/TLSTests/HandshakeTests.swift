import COpenSSL
import IOCore
import Testing

@testable import TLS

@Suite struct HandshakeTests {
    @Test func tls13DefaultHandshakeNegotiatesH2AndVerifiesChain() throws {
        let hs = try Handshake(client: Fixtures.clientContext(), server: Fixtures.serverContext())
        #expect(hs.succeeded, "\(String(describing: hs.client.error)) / \(String(describing: hs.server.error))")
        let s = try #require(hs.server.info)
        #expect(s.version == 772)  // what Caddy logs for TLS 1.3
        #expect(s.protocolVersion == .tls13)
        #expect(s.cipherSuite == 0x1301)  // 4865, TLS_AES_128_GCM_SHA256
        #expect(s.cipherSuiteName == "TLS_AES_128_GCM_SHA256")
        #expect(s.applicationProtocol == "h2")
        #expect(s.serverName == "localhost")
        #expect(s.resumed == false)
        #expect(hs.client.info == s)
        #expect(hs.server.handshakeCompletions == 1 && hs.client.handshakeCompletions == 1)
        #expect(hs.server.connection.applicationProtocol == .h2)
        // The server sent the intermediate: the client verified up to the root it trusts.
        #expect(hs.client.connection.peerCertificate?.dnsNames == ["localhost"])
        #expect(hs.client.connection.peerCertificate?.ipAddresses == ["127.0.0.1", "::1"])
        #expect(try hs.send(Array("ping".utf8), from: hs.client) == Array("ping".utf8))
        #expect(try hs.send(Array("pong".utf8), from: hs.server) == Array("pong".utf8))
    }

    @Test func tls12ForcedWithECDSA() throws {
        let client = try Fixtures.clientContext { $0.maximumVersion = .tls12 }
        let hs = try Handshake(client: client, server: Fixtures.serverContext())
        #expect(hs.succeeded)
        let s = try #require(hs.server.info)
        #expect(s.version == 771)
        #expect(s.cipherSuite == 0xC02B)  // ECDHE-ECDSA-AES128-GCM-SHA256
        #expect(s.cipherSuiteName == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
        #expect(s.applicationProtocol == "h2")
        #expect(try hs.send(Array("hello".utf8), from: hs.client) == Array("hello".utf8))
    }

    @Test func tls12ForcedWithRSA() throws {
        let client = try Fixtures.clientContext { $0.maximumVersion = .tls12 }
        let hs = try Handshake(client: client, server: Fixtures.serverContext([Fixtures.rsa]), serverName: "rsa.test")
        #expect(hs.succeeded, "\(String(describing: hs.server.error))")
        #expect(hs.server.info?.cipherSuite == 0xC02F)  // ECDHE-RSA-AES128-GCM-SHA256
    }

    @Test func tls12ChaChaWhenClientPrefersIt() throws {
        let client = try Fixtures.clientContext {
            $0.maximumVersion = .tls12
            $0.cipherList = "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"
        }
        let hs = try Handshake(client: client, server: Fixtures.serverContext())
        #expect(hs.server.info?.cipherSuite == 0xCCA9)  // SSL_OP_PRIORITIZE_CHACHA
    }

    @Test func tls13ServerPicksAESWhenClientListsItFirst() throws {
        let client = try Fixtures.clientContext { $0.cipherSuites = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256" }
        let hs = try Handshake(client: client, server: Fixtures.serverContext())
        // Server preference: AES-128-GCM first even though the client listed AES-256 first.
        #expect(hs.server.info?.cipherSuite == 0x1301)
    }

    @Test(
        arguments: [
            ([ApplicationProtocol.h2, .http11], [ApplicationProtocol.h2, .http11], "h2"),
            ([.http11], [.h2, .http11], "http/1.1"),
            ([.h2, .http11], [.http11], "http/1.1"),
            ([.http11, .h2], [.h2, .http11], "h2"),  // server preference wins
            ([], [.h2, .http11], nil),  // client sent no ALPN
            ([.http11], [.h2], nil),  // Go's fallback: http/1.1 client on an h2-only server
            ([.h2, .http11], [], nil),  // listener without ALPN
        ] as [([ApplicationProtocol], [ApplicationProtocol], String?)])
    func alpnSelection(client: [ApplicationProtocol], server: [ApplicationProtocol], expected: String?) throws {
        let hs = try Handshake(
            client: Fixtures.clientContext(protocols: client),
            server: Fixtures.serverContext(protocols: server))
        #expect(hs.succeeded)
        #expect(hs.server.info?.applicationProtocol == expected)
        #expect(hs.client.info?.applicationProtocol == expected)
    }

    @Test func alpnWithoutOverlapIsRefused() throws {
        let hs = try Handshake(
            client: Fixtures.clientContext(protocols: ["h3", "spdy/3"]), server: Fixtures.serverContext())
        #expect(!hs.succeeded)
        let e = try #require(hs.server.error)
        #expect(e.kind == .handshake)
        #expect(hs.client.error?.hasReason("no application protocol") == true, "\(String(describing: hs.client.error))")
    }

    @Test func tls11ClientIsRejected() throws {
        let client = try Fixtures.clientContext {
            $0.minimumVersion = .tls11
            $0.maximumVersion = .tls11
            $0.cipherList = "DEFAULT:@SECLEVEL=0"
            $0.securityLevel = 0
        }
        let hs = try Handshake(client: client, server: Fixtures.serverContext())
        #expect(!hs.succeeded)
        // The ClientHello really went out; the server refused the version.
        let e = try #require(hs.server.error)
        #expect(e.kind == .handshake)
        #expect(e.hasReason("unsupported protocol"), "\(e)")
        #expect(hs.client.error?.hasReason("protocol version") == true, "\(String(describing: hs.client.error))")
    }

    @Test(arguments: ["AES128-SHA", "AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"])
    func nonForwardSecretOrCBCSuitesAreRejected(suite: String) throws {
        let client = try Fixtures.clientContext {
            $0.maximumVersion = .tls12
            $0.cipherList = suite
        }
        let hs = try Handshake(client: client, server: Fixtures.serverContext())
        #expect(!hs.succeeded)
        let e = try #require(hs.server.error)
        #expect(e.hasReason("no shared cipher"), "\(e)")
        #expect(e.errors.first?.library == "SSL routines")
        #expect(e.description.contains("error:0A0000C1:SSL routines::no shared cipher"))
        #expect(hs.client.error?.hasReason("handshake failure") == true)
    }

    @Test func serverRefusesOldVersionsInConfiguration() throws {
        #expect(throws: TLSError.self) {
            _ = try Fixtures.serverContext { $0.minimumVersion = .tls11 }
        }
        #expect(throws: TLSError.self) {
            _ = try Fixtures.serverContext(protocols: [ApplicationProtocol("")])
        }
    }

    @Test func tls13OnlyServerRejectsTLS12Client() throws {
        let server = try Fixtures.serverContext { $0.minimumVersion = .tls13 }
        let client = try Fixtures.clientContext { $0.maximumVersion = .tls12 }
        let hs = try Handshake(client: client, server: server)
        #expect(!hs.succeeded)
        #expect(hs.server.error?.hasReason("unsupported protocol") == true)
    }

    @Test func clientVerificationFailsForWrongNameAndUntrustedRoot() throws {
        // Certificate for example.com, client expects localhost.
        let hs = try Handshake(
            client: Fixtures.clientContext(), server: Fixtures.serverContext([Fixtures.example]),
            serverName: "localhost")
        #expect(!hs.succeeded)
        let e = try #require(hs.client.error)
        #expect(e.hasReason("certificate verify failed"))
        #expect(e.message.contains("hostname mismatch"), "\(e)")

        // A root the client does not trust.
        let otherCA = try LocalCA(directory: Fixtures.temporaryDirectory("other-ca"))
        let client = try TLSContext(client: TLSClientConfiguration(trustRoots: .pem(otherCA.rootCertificatePEM)))
        let hs2 = try Handshake(client: client, server: Fixtures.serverContext())
        #expect(
            hs2.client.error?.message.contains("unable to get local issuer certificate") == true,
            "\(String(describing: hs2.client.error))")
    }

    @Test func clientVerifiesIPAddressesWithoutSNI() throws {
        for ip in ["127.0.0.1", "::1"] {
            let hs = try Handshake(
                client: Fixtures.clientContext(),
                server: Fixtures.serverContext([Fixtures.example, Fixtures.localhost]),
                serverName: ip, localAddress: ip)
            #expect(hs.succeeded, "\(ip): \(String(describing: hs.client.error))")
            #expect(hs.server.info?.serverName == nil)  // RFC 6066 §3: no IP literals in SNI
        }
    }

    @Test func handshakeSurvivesOneByteSegments() throws {
        let hs = try Handshake(client: Fixtures.clientContext(), server: Fixtures.serverContext(), chunk: 1)
        #expect(hs.succeeded)
        #expect(try hs.send(Array("x".utf8), from: hs.client, chunk: 1) == Array("x".utf8))
    }

    @Test func contextRoleMismatchIsAnError() throws {
        let server = try Fixtures.serverContext()
        #expect(throws: TLSError.self) {
            _ = try TLSConnection(client: server, input: ByteBuffer(), output: ByteBuffer(), serverName: nil)
        }
    }
}

@Suite struct HandshakeEdgeTests {
    @Test func helloRetryRequestKeepsSNIAndALPN() throws {
        // The client's only key share is for P-521, which the server does not accept: the
        // server answers with HelloRetryRequest (RFC 8446 §4.1.4) and the client retries with
        // X25519. Certificate selection and ALPN must survive the second ClientHello.
        let client = try Fixtures.clientContext { $0.groups = "P-521:X25519" }
        let hs = try Handshake(
            client: client, server: Fixtures.serverContext([Fixtures.example, Fixtures.localhost]),
            serverName: "localhost")
        #expect(hs.succeeded, "\(String(describing: hs.server.error))")
        #expect(hs.server.info?.applicationProtocol == "h2")
        #expect(hs.client.connection.peerCertificate?.dnsNames == ["localhost"])
    }

    @Test func groupsOutsideThePolicyAreRefused() throws {
        let client = try Fixtures.clientContext { $0.groups = "P-521:ffdhe2048" }
        let hs = try Handshake(client: client, server: Fixtures.serverContext())
        #expect(!hs.succeeded)
    }

    @Test func renegotiationIsRefused() throws {
        let client = try Fixtures.clientContext { $0.maximumVersion = .tls12 }
        let hs = try Handshake(client: client, server: Fixtures.serverContext())
        #expect(hs.succeeded)
        // Ask for a renegotiation from the client side (RFC 5746); the server must not do it.
        let ssl = hs.client.connection.ssl
        _ = SSL_clear_options(ssl, berth_ssl_op_no_renegotiation())
        #expect(SSL_renegotiate(ssl) == 1)
        _ = SSL_do_handshake(ssl)
        ERR_clear_error()
        pump(hs.client, hs.server)
        // The server answered with a no_renegotiation alert (RFC 5246 §7.2.2), which OpenSSL's
        // client treats as fatal.
        #expect(hs.client.error?.hasReason("no renegotiation") == true, "\(String(describing: hs.client.error))")
        #expect(hs.server.connection.state != .handshaking)
    }
}

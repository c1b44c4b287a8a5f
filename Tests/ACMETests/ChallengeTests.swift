import COpenSSL
import Foundation
import IOCore
import TLS
import Testing

@testable import ACME

@Suite("Challenge responses (RFC 8555 §8.3, RFC 8737)")
struct ChallengeTests {
    @Test func http01AnswersOnlyKnownTokensForTheirDomain() {
        let s = ACMEChallengeStore()
        s.presentHTTP01(domain: "Example.com", token: "tok123", keyAuthorization: "tok123.thumb")
        let path = ACMEChallengeStore.http01PathPrefix + "tok123"
        #expect(s.http01Response(path: path, host: "example.com") == "tok123.thumb")
        #expect(s.http01Response(path: path, host: "EXAMPLE.COM.") == "tok123.thumb")
        #expect(s.http01Response(path: path, host: nil) == "tok123.thumb")
        #expect(s.http01Response(path: path, host: "other.example") == nil)
        #expect(s.http01Response(path: ACMEChallengeStore.http01PathPrefix + "nope", host: "example.com") == nil)
        #expect(s.http01Response(path: ACMEChallengeStore.http01PathPrefix, host: "example.com") == nil)
        #expect(s.http01Response(path: "/tok123", host: "example.com") == nil)
        s.removeHTTP01(token: "tok123")
        #expect(s.http01Response(path: path, host: "example.com") == nil)
        #expect(s.http01Count == 0)
    }

    @Test func tlsALPN01CertificateShape() throws {
        let ka = "token.thumbprint"
        let cert = try ACMEChallengeStore.challengeCertificate(domain: "Example.COM", keyAuthorization: ka, now: 1_700_000_000)
        #expect(cert.dnsNames == ["example.com"] && cert.ipAddresses.isEmpty)
        let pem = cert.leafPEM()
        let x = try #require(pem.withUnsafeBytes { raw -> OpaquePointer? in
            let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count))
            defer { BIO_free(bio) }
            return PEM_read_bio_X509(bio, nil, nil, nil)
        })
        defer { X509_free(x) }
        // Self-signed: issuer == subject, signed by its own key.
        #expect(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(x)) == 0)
        #expect(X509_verify(x, X509_get0_pubkey(x)) == 1)
        // id-pe-acmeIdentifier, critical, OCTET STRING (32) of SHA-256(key authorization).
        let obj = try #require(OBJ_txt2obj(ACMEChallengeStore.acmeIdentifierOID, 1))
        defer { ASN1_OBJECT_free(obj) }
        let idx = X509_get_ext_by_OBJ(x, obj, -1)
        #expect(idx >= 0)
        let ext = try #require(X509_get_ext(x, idx))
        #expect(X509_EXTENSION_get_critical(ext) == 1)
        let data = try #require(X509_EXTENSION_get_data(ext))
        let bytes = Array(UnsafeBufferPointer(start: ASN1_STRING_get0_data(data), count: Int(ASN1_STRING_length(data))))
        #expect(bytes == [0x04, 0x20] + Digest.sha256(Array(ka.utf8)))
    }

    /// The whole RFC 8737 exchange through the TLS module: a ClientHello offering only
    /// `acme-tls/1` gets the challenge certificate and ALPN; a normal one gets the site's.
    @Test func handshakeServesChallengeCertificateOnlyToACMEClients() throws {
        let store = ACMEChallengeStore()
        try store.presentTLSALPN01(domain: "example.com", keyAuthorization: "t.k")
        let site = try LocalTestCA.leaf(["example.com"])
        var cfg = TLSServerConfiguration(certificates: CertificateSource([site]))
        cfg.acmeChallengeCertificates = store.tlsALPN01
        let server = try TLSContext(server: cfg)
        let acmeClient = try TLSContext(client: TLSClientConfiguration(trustRoots: .insecureNoVerification, applicationProtocols: [.acmeTLS1]))
        let normalClient = try TLSContext(client: TLSClientConfiguration(trustRoots: .insecureNoVerification, applicationProtocols: [.h2, .http11]))

        let a = try handshake(acmeClient, server, sni: "example.com")
        #expect(a.error == nil)
        #expect(a.alpn == "acme-tls/1")
        #expect(a.peer?.dnsNames == ["example.com"] && a.peer?.notAfter == store.tlsALPN01.current.match("example.com")?.notAfter)

        let n = try handshake(normalClient, server, sni: "example.com")
        #expect(n.error == nil && n.alpn == "h2")
        #expect(n.peer?.notAfter == site.notAfter)

        // Unknown name, or after removal: refused (RFC 8737 §3 — never a wrong certificate).
        #expect(try handshake(acmeClient, server, sni: "other.example.com").error != nil)
        store.removeTLSALPN01(domain: "example.com")
        #expect(try handshake(acmeClient, server, sni: "example.com").error != nil)
    }

    struct Result { var error: String?; var alpn: String?; var peer: TLSPeerCertificate? }

    func handshake(_ clientContext: TLSContext, _ serverContext: TLSContext, sni: String) throws -> Result {
        let cin = ByteBuffer(), cout = ByteBuffer(), sin = ByteBuffer(), sout = ByteBuffer(), plain = ByteBuffer()
        let client = try TLSConnection(client: clientContext, input: cin, output: cout, serverName: sni)
        let server = try TLSConnection(server: serverContext, input: sin, output: sout)
        try client.startHandshake()
        for _ in 0..<20 {
            sin.append(cout.readable); cout.clear()
            do { try server.feed(into: plain) } catch { return Result(error: "\(error)") }
            cin.append(sout.readable); sout.clear()
            do { try client.feed(into: plain) } catch { return Result(error: "\(error)") }
            if client.isEstablished && server.isEstablished { break }
        }
        guard client.isEstablished else { return Result(error: "no handshake") }
        return Result(error: nil, alpn: client.info?.applicationProtocol, peer: client.peerCertificate)
    }
}

/// A throwaway CA for site certificates in tests.
enum LocalTestCA {
    static func leaf(_ names: [String]) throws -> TLSCertificate {
        let now = Int(Date().timeIntervalSince1970)
        var root = X509Builder(commonName: "Test Root", notBefore: now - 60, notAfter: now + 3600)
        root.isCA = true
        root.keyUsage = "keyCertSign"
        root.extendedKeyUsage = nil
        let r = try root.sign(key: try TLSPrivateKey.generateECDSA(), issuer: nil)
        var b = X509Builder(commonName: nil, notBefore: now - 60, notAfter: now + 1800)
        b.dnsNames = names
        return try b.sign(key: try TLSPrivateKey.generateECDSA(), issuer: r)
    }
}

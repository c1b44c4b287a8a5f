import Foundation
import JSON
import Testing

@testable import Config

/// `tls { ciphers, curves, client_auth }`: Caddy's names mapped to OpenSSL's, Berth's refusals
/// with file:line, and the per-server merge.
@Suite struct TLSPolicyConfigTests {
    func server(_ site: String) throws -> ServerTLSConfig {
        let c = try adapt("localhost {\n\ttls internal {\n\(site)\t}\n\trespond x\n}\n")
        return try #require(c.servers.compactMap(\.tls).first)
    }

    @Test func ciphersMapToOpenSSLNamesAndTLS13NamesAreAccepted() throws {
        let t = try server("\t\tciphers TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 TLS_AES_128_GCM_SHA256 TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256\n")
        #expect(t.ciphers == ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"])
        #expect(try server("\t\tciphers TLS_AES_256_GCM_SHA384\n").ciphers == [])
        #expect(try server("").ciphers == nil)
    }

    @Test func curvesMapToGroups() throws {
        #expect(try server("\t\tcurves secp384r1 x25519 secp521r1 secp256r1\n").curves == ["P-384", "X25519", "P-521", "P-256"])
    }

    @Test func refusedNamesSayWhyWithTheLine() {
        let cbc = adaptError("localhost {\n\ttls internal {\n\t\tciphers TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA\n\t}\n}\n")
        #expect(cbc?.hasPrefix("cipher suite 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA' is not allowed by Berth (CBC mode)") == true)
        #expect(cbc?.hasSuffix(", at Caddyfile:3") == true)
        let rsa = adaptError("localhost {\n\ttls internal {\n\t\tciphers TLS_RSA_WITH_AES_256_GCM_SHA384\n\t}\n}\n")
        #expect(rsa?.contains("RSA key exchange, no forward secrecy") == true)
        let unknown = adaptError("localhost {\n\ttls internal {\n\t\tciphers FOO\n\t}\n}\n")
        #expect(unknown?.hasPrefix("wrong cipher suite name or cipher suite not supported: 'FOO'") == true)
        let curve = adaptError("localhost {\n\ttls internal {\n\t\tcurves x448\n\t}\n}\n")
        #expect(curve?.hasPrefix("Wrong curve name or curve not supported: 'x448'") == true)
        #expect(curve?.hasSuffix(", at Caddyfile:3") == true)
    }

    @Test func sitesOnOneListenerMustAgree() {
        let e = adaptError(
            "a.localhost {\n\ttls internal {\n\t\tcurves x25519\n\t}\n}\nb.localhost {\n\ttls internal {\n\t\tcurves secp256r1\n\t}\n}\n")
        #expect(e?.contains("must use the same tls curves") == true)
    }

    @Test func clientAuthParsesCaddysSubdirectives() throws {
        let t = try server(
            "\t\tclient_auth {\n\t\t\tmode verify_if_given\n\t\t\ttrusted_ca_cert AAAA\n\t\t\ttrusted_ca_cert_file /ca.pem\n\t\t\ttrusted_leaf_cert_file /leaf.pem\n\t\t}\n")
        let p = try #require(t.clientAuth.first)
        #expect(p.names == ["localhost"])
        #expect(p.spec.mode == "verify_if_given")
        #expect(p.spec.trustedCACerts == ["AAAA"] && p.spec.trustedCACertFiles == ["/ca.pem"])
        #expect(p.spec.trustedLeafCertFiles == ["/leaf.pem"])
        #expect(p.spec.location.line == 3)
    }

    @Test func clientAuthErrors() {
        let mode = adaptError("localhost {\n\ttls internal {\n\t\tclient_auth {\n\t\t\tmode maybe\n\t\t}\n\t}\n}\n")
        #expect(mode?.hasPrefix("client auth mode not recognized: maybe") == true)
        #expect(mode?.hasSuffix(", at Caddyfile:4") == true)
        let sub = adaptError("localhost {\n\ttls internal {\n\t\tclient_auth {\n\t\t\ttrust_pool file\n\t\t}\n\t}\n}\n")
        #expect(sub?.contains("client_auth trust_pool is not supported by this Berth build yet") == true)
    }

    /// As in Caddy, a site with client_auth is served over HTTP/3 too (the QUIC handshake
    /// applies the same policy), implicitly and on an explicit datagram listener.
    @Test func clientAuthServersKeepHTTP3() throws {
        let c = try adapt("https://localhost:8443 {\n\ttls internal {\n\t\tclient_auth {\n\t\t\tmode require\n\t\t}\n\t}\n\trespond x\n}\n")
        let s = try #require(c.servers.first { $0.tls != nil })
        #expect(s.listeners.contains { $0.protocols.contains(.h3) })
        #expect(s.tls?.clientAuth.isEmpty == false)
        let e = try adapt("https://localhost {\n\tbind fd/4 fdgram/5\n\ttls internal {\n\t\tclient_auth {\n\t\t\tmode require\n\t\t}\n\t}\n}\n")
        #expect(e.servers.first { $0.tls != nil }?.listeners.contains { $0.address.isDatagram } == true)
    }
}

/// The TLS policy survives `berth adapt` → `/load` (Berth's JSON): losing `client_auth` on the
/// way would silently open the site.
@Suite struct TLSPolicyJSONTests {
    @Test func clientAuthCiphersCurvesAlpnRoundTrip() throws {
        let c = try adapt(
            "https://a.localhost:8443, https://b.localhost:8443 {\n\ttls internal {\n\t\tciphers TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\n\t\tcurves x25519 secp384r1\n\t\talpn http/1.1\n\t\tclient_auth {\n\t\t\tmode verify_if_given\n\t\t\ttrusted_ca_cert AAAA\n\t\t\ttrusted_leaf_cert_file /leaf.pem\n\t\t}\n\t}\n\trespond x\n}\n")
        let d = try JSONConfigDecoder.decode(Array(c.json.serialized().utf8), filename: "t.json")
        let a = try #require(c.servers.compactMap(\.tls).first)
        let b = try #require(d.servers.compactMap(\.tls).first)
        #expect(b.ciphers == a.ciphers && b.ciphers == ["ECDHE-ECDSA-AES256-GCM-SHA384"])
        #expect(b.curves == ["X25519", "P-384"] && b.alpn == ["http/1.1"])
        #expect(b.clientAuth.map(\.names) == [["a.localhost", "b.localhost"]])
        #expect(b.clientAuth.first?.spec.mode == "verify_if_given")
        #expect(b.clientAuth.first?.spec.trustedCACerts == ["AAAA"])
        #expect(b.clientAuth.first?.spec.trustedLeafCertFiles == ["/leaf.pem"])
    }

    @Test func jsonWithClientAuthAndH3Loads() throws {
        let c = try adapt("https://localhost:8443 {\n\ttls internal {\n\t\tclient_auth {\n\t\t\tmode require\n\t\t}\n\t}\n\trespond x\n}\n")
        let text = c.json.serialized()
        #expect(text.contains("\"h3\""))
        let d = try JSONConfigDecoder.decode(Array(text.utf8), filename: "t.json")
        let s = try #require(d.servers.first { $0.tls != nil })
        #expect(s.tls?.clientAuth.first?.spec.mode == "require")
        #expect(s.listeners.contains { $0.protocols.contains(.h3) })
    }
}

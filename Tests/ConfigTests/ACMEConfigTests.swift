import Foundation
import Testing

@testable import Config

@Suite("Automatic HTTPS (ACME) in the config")
struct ACMEConfigTests {
    func adapt(_ text: String) throws -> BerthConfig {
        try CaddyfileAdapter.adapt(Array(text.utf8), filename: "Caddyfile", environment: [:])
    }

    func specs(_ c: BerthConfig) -> [CertificateSpec] { c.servers.flatMap { $0.tls?.certificates ?? [] } }

    /// Seed example 3: the public name on fd/4 gets an ACME certificate from the default CA.
    @Test func example3PublicNameUsesACME() throws {
        let url = Golden.directory.appendingPathComponent("examples/example3.Caddyfile")
        let c = try CaddyfileAdapter.adapt(Array(try Data(contentsOf: url)), filename: url.path, environment: [:])
        let s = try #require(c.servers.first { $0.listeners.contains { $0.address == .fd(4) } })
        #expect(s.tls?.certificates == [CertificateSpec(names: ["example.com"], source: .acme(ACMEIssuerSpec()))])
    }

    @Test func oneCertificatePerPublicNameAndLocalNamesFromTheLocalCA() throws {
        let c = try adapt("a.example.com, b.example.com, localhost, 127.0.0.1 {\n\trespond x\n}\n")
        let got = specs(c)
        #expect(got.filter { if case .acme = $0.source { true } else { false } }.map(\.names) == [["a.example.com"], ["b.example.com"]])
        #expect(got.contains(CertificateSpec(names: ["localhost", "127.0.0.1"], source: .internalCA)))
    }

    @Test func siteSettingsOverrideGlobalOnes() throws {
        let c = try adapt("""
            {
            \temail global@example.com
            \tacme_ca https://ca.example/dir
            }

            a.example.com {
            \ttls site@example.com
            }

            b.example.com {
            \ttls {
            \t\tissuer acme {
            \t\t\temail other@example.com
            \t\t\tdisable_tlsalpn_challenge
            \t\t}
            \t}
            }

            """)
        var a = ACMEIssuerSpec()
        a.directory = "https://ca.example/dir"
        a.email = "site@example.com"
        var b = a
        b.email = "other@example.com"
        b.disableTLSALPNChallenge = true
        #expect(specs(c).map(\.source).sorted { "\($0)" < "\($1)" } == [.acme(a), .acme(b)].sorted { "\($0)" < "\($1)" })
    }

    @Test func autoHTTPSOffStillRequiresACertificateSource() throws {
        #expect(throws: ConfigError.self) { try adapt("{\n\tauto_https off\n}\n\nexample.com {\n\trespond x\n}\n") }
        #expect(throws: ConfigError.self) { try adapt("{\n\tauto_https disable_certs\n}\n\nexample.com {\n\trespond x\n}\n") }
    }

    @Test func localCertsAndTLSInternalWin() throws {
        let c = try adapt("{\n\tlocal_certs\n}\n\nexample.com {\n\trespond x\n}\n")
        #expect(specs(c) == [CertificateSpec(names: ["example.com"], source: .internalCA)])
        let d = try adapt("example.com {\n\ttls internal\n}\n")
        #expect(specs(d) == [CertificateSpec(names: ["example.com"], source: .internalCA)])
    }

    @Test func acmeEABNeedsBothFields() throws {
        #expect(throws: ConfigError.self) { try adapt("{\n\tacme_eab {\n\t\tkey_id k\n\t}\n}\n\nexample.com {\n}\n") }
    }
}

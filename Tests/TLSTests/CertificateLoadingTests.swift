import Foundation
import IOCore
import Testing

@testable import TLS

@Suite struct CertificateLoadingTests {
    /// Runs the `openssl` command-line tool (a real peer for file formats).
    func openssl(_ args: [String], in dir: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "openssl \(args.joined(separator: " "))")
    }

    @Test func loadsCertAndKeyFilesMadeByOpenSSL() throws {
        let dir = Fixtures.temporaryDirectory("files")
        try openssl(
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem",
                "-days", "2", "-subj", "/CN=file.test", "-addext",
                "subjectAltName=DNS:file.test,DNS:*.file.test,IP:192.0.2.1",
            ], in: dir)
        let cert = try TLSCertificate(certificateFile: dir + "/cert.pem", keyFile: dir + "/key.pem")
        #expect(cert.dnsNames == ["file.test", "*.file.test"])
        #expect(cert.ipAddresses == ["192.0.2.1"])
        #expect(cert.commonName == "file.test")
        #expect(cert.keyType == "RSA")
        #expect(cert.intermediateCount == 0)

        let client = try TLSContext(client: TLSClientConfiguration(trustRoots: .file(dir + "/cert.pem")))
        let hs = try Handshake(client: client, server: Fixtures.serverContext([cert]), serverName: "a.file.test")
        #expect(hs.succeeded, "\(String(describing: hs.client.error))")
    }

    @Test func loadsECKeysInEveryPEMFlavour() throws {
        let dir = Fixtures.temporaryDirectory("ec")
        // `ecparam -genkey` writes an EC PARAMETERS block before the key.
        try openssl(["ecparam", "-name", "prime256v1", "-genkey", "-out", "sec1.pem"], in: dir)
        try openssl(["pkcs8", "-topk8", "-nocrypt", "-in", "sec1.pem", "-out", "pkcs8.pem"], in: dir)
        try openssl(
            ["req", "-x509", "-new", "-key", "sec1.pem", "-out", "cert.pem", "-days", "1", "-subj", "/CN=ec.test"],
            in: dir)
        for key in ["sec1.pem", "pkcs8.pem"] {
            let c = try TLSCertificate(certificateFile: dir + "/cert.pem", keyFile: dir + "/" + key)
            #expect(c.keyType == "EC")
            #expect(c.dnsNames == ["ec.test"])  // CN used when there is no SAN
        }
    }

    @Test func chainFileRoundTrips() throws {
        let leaf = Fixtures.example
        let dir = Fixtures.temporaryDirectory("chain")
        try FileIO.writeAtomically(dir + "/chain.pem", leaf.certificateChainPEM())
        try FileIO.writeAtomically(dir + "/key.pem", leaf.privateKeyPEM(), mode: 0o600)
        let loaded = try TLSCertificate(certificateFile: dir + "/chain.pem", keyFile: dir + "/key.pem")
        #expect(loaded.intermediateCount == 1)
        #expect(loaded.names == leaf.names)
        #expect(loaded.certificateChainPEM() == leaf.certificateChainPEM())
        let mem = try TLSCertificate(certificatePEM: leaf.certificateChainPEM(), keyPEM: leaf.privateKeyPEM())
        #expect(mem.notAfter == leaf.notAfter)
    }

    @Test func mismatchedKeyIsRefusedWithOpenSSLReasons() throws {
        let e = try #require(throws: TLSError.self) {
            _ = try TLSCertificate(
                certificatePEM: Fixtures.example.certificateChainPEM(), keyPEM: Fixtures.other.privateKeyPEM())
        }
        #expect(e.kind == .certificate)
        #expect(e.message.contains("does not match"))
        #expect(e.hasReason("key values mismatch"), "\(e)")
    }

    @Test func garbageAndMissingFiles() throws {
        let garbage = try #require(throws: TLSError.self) {
            _ = try TLSCertificate(
                certificatePEM: Array("not a certificate".utf8), keyPEM: Fixtures.example.privateKeyPEM())
        }
        #expect(garbage.kind == .certificate)
        #expect(garbage.hasReason("no start line"), "\(garbage)")

        let missing = try #require(throws: TLSError.self) {
            _ = try TLSCertificate(certificateFile: "/nonexistent/cert.pem", keyFile: "/nonexistent/key.pem")
        }
        #expect(missing.kind == .io)
        #expect(missing.message.contains("/nonexistent/cert.pem"))
    }

    @Test func encryptedKeyFailsInsteadOfPrompting() throws {
        let dir = Fixtures.temporaryDirectory("enc")
        try openssl(
            [
                "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes256", "-pass", "pass:secret",
                "-out", "key.pem",
            ], in: dir)
        try openssl(
            [
                "req", "-x509", "-new", "-key", "key.pem", "-passin", "pass:secret", "-out", "cert.pem", "-days", "1",
                "-subj", "/CN=enc.test",
            ], in: dir)
        let e = try #require(throws: TLSError.self) {
            _ = try TLSCertificate(certificateFile: dir + "/cert.pem", keyFile: dir + "/key.pem")
        }
        #expect(e.kind == .certificate)
    }

    @Test func errorQueueIsLeftClean() throws {
        _ = try? TLSCertificate(certificatePEM: Array("junk".utf8), keyPEM: Array("junk".utf8))
        #expect(OpenSSLErrorQueue.drain().isEmpty)
        let hs = try Handshake(
            client: Fixtures.clientContext {
                $0.maximumVersion = .tls12
                $0.cipherList = "AES128-SHA"
            },
            server: Fixtures.serverContext())
        #expect(!hs.succeeded)
        #expect(OpenSSLErrorQueue.drain().isEmpty)
    }
}

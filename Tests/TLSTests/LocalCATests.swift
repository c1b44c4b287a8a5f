import COpenSSL
import Foundation
import IOCore
import Testing

@testable import TLS

/// Independent checks with OpenSSL's own verifier (not the module's code paths).
enum Verify {
    static func certs(_ pem: [UInt8]) -> [OpaquePointer] {
        var out: [OpaquePointer] = []
        pem.withUnsafeBytes { raw in
            let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count))
            while let x = PEM_read_bio_X509(bio, nil, nil, nil) { out.append(x) }
            BIO_free(bio)
        }
        ERR_clear_error()
        return out
    }

    /// X509_verify_cert of `chainPEM` (leaf first) against `rootPEM`, optionally checking a
    /// host name or IP, at `time`. Returns the verify error code (0 = X509_V_OK).
    static func chain(
        _ chainPEM: [UInt8], root rootPEM: [UInt8], host: String? = nil, ip: String? = nil,
        at time: Int? = nil
    ) -> Int32 {
        let chain = certs(chainPEM)
        let roots = certs(rootPEM)
        defer { for x in chain + roots { X509_free(x) } }
        guard let leaf = chain.first, let store = X509_STORE_new(), let ctx = X509_STORE_CTX_new() else { return -1 }
        defer {
            X509_STORE_CTX_free(ctx)
            X509_STORE_free(store)
        }
        for r in roots { X509_STORE_add_cert(store, r) }
        let untrusted = berth_sk_x509_new_null()!
        defer { OPENSSL_sk_free(untrusted) }
        for c in chain.dropFirst() { _ = berth_sk_x509_push(untrusted, c) }
        guard X509_STORE_CTX_init(ctx, store, leaf, untrusted) == 1 else { return -1 }
        let param = X509_STORE_CTX_get0_param(ctx)
        if let host { X509_VERIFY_PARAM_set1_host(param, host, 0) }
        if let ip { X509_VERIFY_PARAM_set1_ip_asc(param, ip) }
        if let time { X509_VERIFY_PARAM_set_time(param, time_t(time)) }
        X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER)
        let ok = X509_verify_cert(ctx)
        let err = X509_STORE_CTX_get_error(ctx)
        ERR_clear_error()
        return ok == 1 ? 0 : (err == 0 ? -1 : err)
    }

    static func mode(_ path: String) -> mode_t {
        var st = stat()
        stat(path, &st)
        return st.st_mode & 0o7777
    }

    static func text(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }
}

@Suite struct LocalCATests {
    let now = Int(Date().timeIntervalSince1970)

    @Test func layoutAndPermissionsMirrorCaddy() throws {
        let base = Fixtures.temporaryDirectory("layout")
        let dir = base + "/berth/pki/authorities/local"
        let ca = try LocalCA(directory: dir)
        #expect(ca.createdRoot)
        for f in ["root.crt", "intermediate.crt"] { #expect(Verify.mode("\(dir)/\(f)") == 0o644, "\(f)") }
        for f in ["root.key", "intermediate.key"] { #expect(Verify.mode("\(dir)/\(f)") == 0o600, "\(f)") }
        #expect(Verify.mode(base + "/berth/pki") == 0o700)
        #expect(Verify.text(dir + "/root.key").hasPrefix("-----BEGIN EC PRIVATE KEY-----"))  // Caddy's format
        #expect(Verify.text(dir + "/root.crt").hasPrefix("-----BEGIN CERTIFICATE-----"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp") }
        #expect(leftovers.isEmpty)
        #expect(ca.rootCertificatePath == dir + "/root.crt")

        #expect(ca.root.commonName?.hasPrefix("Berth Local Authority - ") == true)
        #expect(ca.root.commonName?.hasSuffix(" ECC Root") == true)
        #expect(ca.intermediate.commonName == "Berth Local Authority - ECC Intermediate")
        #expect(ca.root.keyType == "EC")
        #expect(ca.root.notAfter - ca.root.notBefore == LocalCA.rootLifetime + LocalCA.backdate)
        #expect(ca.intermediate.notAfter - ca.intermediate.notBefore == LocalCA.intermediateLifetime + LocalCA.backdate)
    }

    @Test func leafForLocalhostAndLoopbackIPsVerifiesAgainstTheRoot() throws {
        let ca = Fixtures.ca
        let leaf = try ca.issue(names: ["LOCALHOST", "127.0.0.1", "::1", "localhost"])
        #expect(leaf.dnsNames == ["localhost"])
        #expect(leaf.ipAddresses == ["127.0.0.1", "::1"])
        #expect(leaf.commonName == nil)
        #expect(leaf.intermediateCount == 1)
        #expect(leaf.notAfter - leaf.notBefore == LocalCA.leafLifetime + LocalCA.backdate)
        #expect(!leaf.needsRenewal(now: now))
        #expect(leaf.needsRenewal(now: now + 9 * 3600))

        let chain = leaf.certificateChainPEM()
        let root = Array(Verify.text(ca.rootCertificatePath).utf8)
        #expect(Verify.chain(chain, root: root) == 0)
        #expect(Verify.chain(chain, root: root, host: "localhost") == 0)
        #expect(Verify.chain(chain, root: root, ip: "127.0.0.1") == 0)
        #expect(Verify.chain(chain, root: root, ip: "::1") == 0)
        #expect(Verify.chain(chain, root: root, host: "example.com") == X509_V_ERR_HOSTNAME_MISMATCH)
        #expect(Verify.chain(chain, root: root, ip: "10.0.0.1") == X509_V_ERR_IP_ADDRESS_MISMATCH)
        #expect(Verify.chain(chain, root: root, at: now + 13 * 3600) == X509_V_ERR_CERT_HAS_EXPIRED)
        // Without the intermediate the chain does not build: the leaf alone is not enough.
        #expect(Verify.chain(leaf.leafPEM(), root: root) == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY)
        // Another CA's root does not vouch for it.
        let other = try LocalCA(directory: Fixtures.temporaryDirectory("other"))
        #expect(Verify.chain(chain, root: other.rootCertificatePEM) != 0)

        // Extensions, checked by OpenSSL.
        let parsed = Verify.certs(chain) + Verify.certs(root)
        defer { for c in parsed { X509_free(c) } }
        try #require(parsed.count == 3)
        let (x, inter, rootX) = (parsed[0], parsed[1], parsed[2])
        #expect(X509_check_purpose(x, X509_PURPOSE_SSL_SERVER, 0) == 1)
        #expect(X509_check_ca(x) == 0)
        #expect(X509_check_ca(inter) == 1)
        #expect(X509_check_ca(rootX) == 1)
        #expect(X509_get_pathlen(inter) == 0)
        #expect(X509_get_pathlen(rootX) == 1)
        #expect(X509_get_extension_flags(x) & UInt32(EXFLAG_SAN_CRITICAL) != 0)  // empty subject
        #expect(X509_get0_subject_key_id(x) != nil)
        #expect(X509_get0_authority_key_id(x) != nil)
    }

    @Test func restartReusesRootAndIntermediate() throws {
        let dir = Fixtures.temporaryDirectory("restart")
        let first = try LocalCA(directory: dir, now: now)
        let second = try LocalCA(directory: dir, now: now + 3600)
        #expect(!second.createdRoot)
        #expect(second.rootCertificatePEM == first.rootCertificatePEM)
        #expect(second.intermediate.leafPEM() == first.intermediate.leafPEM())
        // A leaf from the restarted CA verifies against the root file from the first run.
        let leaf = try second.issue(names: ["restart.test"], now: now + 3600)
        #expect(Verify.chain(leaf.certificateChainPEM(), root: first.rootCertificatePEM, at: now + 3700) == 0)
    }

    @Test func intermediateRenewalWindow() throws {
        let dir = Fixtures.temporaryDirectory("renew")
        let ca = try LocalCA(directory: dir, now: now)
        #expect(!ca.needsRenewal(now: now))
        #expect(!ca.needsRenewal(now: now + 5 * 86_400))  // 2 days left of 7: outside the 20 % window
        let later = now + 6 * 86_400
        #expect(ca.needsRenewal(now: later))
        let old = ca.intermediate
        #expect(try ca.renewIntermediateIfNeeded(now: later))
        #expect(!(try ca.renewIntermediateIfNeeded(now: later)))
        #expect(ca.intermediate !== old)
        #expect(ca.intermediate.notAfter == later + LocalCA.intermediateLifetime)
        #expect(Verify.text(dir + "/intermediate.crt") == String(decoding: ca.intermediate.leafPEM(), as: UTF8.self))
        let leaf = try ca.issue(names: ["renewed.test"], now: later)
        #expect(Verify.chain(leaf.certificateChainPEM(), root: ca.rootCertificatePEM, at: later + 60) == 0)

        // Restarting near the end of an intermediate's life renews it on load.
        let reopened = try LocalCA(directory: dir, now: later + 6 * 86_400)
        #expect(!reopened.createdRoot)
        #expect(reopened.intermediate.notAfter == later + 6 * 86_400 + LocalCA.intermediateLifetime)
    }

    @Test func leafNeverOutlivesTheIntermediate() throws {
        let ca = try LocalCA(directory: Fixtures.temporaryDirectory("clamp"), now: now)
        let late = ca.intermediate.notAfter - 3600
        let leaf = try ca.issue(names: ["clamp.test"], now: late)
        #expect(leaf.notAfter == ca.intermediate.notAfter)
    }

    @Test func expiredRootIsReplaced() throws {
        let dir = Fixtures.temporaryDirectory("expired")
        let first = try LocalCA(directory: dir, now: now)
        let muchLater = try LocalCA(directory: dir, now: now + 11 * 365 * 86_400)
        #expect(muchLater.createdRoot)
        #expect(muchLater.rootCertificatePEM != first.rootCertificatePEM)
    }

    @Test(arguments: [
        "", "bad name", "a..b", "*.", "*", "a.*.b", "ex@mple.com", String(repeating: "a", count: 64) + ".com",
    ])
    func invalidNamesAreRefused(name: String) throws {
        #expect(throws: TLSError.self) { _ = try Fixtures.ca.issue(names: [name]) }
    }

    @Test func wildcardAndUnderscoreNamesAreIssued() throws {
        let c = try Fixtures.ca.issue(names: ["*.Example.NET", "_acme.example.net", "[::1]"])
        #expect(c.dnsNames == ["*.example.net", "_acme.example.net"])
        #expect(c.ipAddresses == ["::1"])
    }
}

@Suite struct LocalCADirectoryTests {
    @Test func defaultDirectoryFollowsXDG() {
        #expect(LocalCA.defaultDirectory().hasSuffix("/berth/pki/authorities/local"))
        if let xdg = ProcessInfo.processInfo.environment["XDG_DATA_HOME"], !xdg.isEmpty {
            #expect(LocalCA.defaultDirectory() == xdg + "/berth/pki/authorities/local")
        }
    }
}

internal import COpenSSL

#if canImport(Glibc)
import JSON
import Glibc
#endif

/// An error from ACME's own use of OpenSSL (keys, signatures, CSRs).
package struct ACMECryptoError: Error, Sendable, CustomStringConvertible {
    package var description: String

    init(_ what: String) {
        var text = what
        var first = true
        while true {
            let e = ERR_get_error()
            if e == 0 { break }
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(e, &buf, buf.count)
            text += (first ? ": " : "; ") + buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            first = false
        }
        description = text
    }
}

/// An ECDSA P-256 private key (`EVP_PKEY`, owned, freed in `deinit`): the ACME account key
/// that signs every request (JWS ES256, RFC 7518 §3.4) and the certificate keys whose public
/// half goes into the CSR.
package final class ACMEKey: @unchecked Sendable {
    /// `EVP_PKEY *`, owned.
    let raw: OpaquePointer

    /// Takes ownership of one reference.
    init(owned raw: OpaquePointer) { self.raw = raw }
    deinit { EVP_PKEY_free(raw) }

    /// A new P-256 key (what Caddy uses for accounts and certificates by default).
    package static func generate() throws(ACMECryptoError) -> ACMEKey {
        ERR_clear_error()
        guard let k = berth_ec_gen("P-256") else { throw ACMECryptoError("generating a P-256 key") }
        return ACMEKey(owned: k)
    }

    /// Reads a PEM private key (SEC1 `EC PRIVATE KEY` or PKCS#8); it must be a P-256 key.
    package convenience init(pem: [UInt8]) throws(ACMECryptoError) {
        ERR_clear_error()
        let key: OpaquePointer? = pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let key else { throw ACMECryptoError("reading a PEM private key") }
        self.init(owned: key)
        guard EVP_PKEY_get_bits(key) == 256, EVP_PKEY_is_a(key, "EC") == 1 else {
            throw ACMECryptoError("the key is not an ECDSA P-256 key")
        }
    }

    /// PEM in the traditional SEC1 form (`EC PRIVATE KEY`), as Caddy stores its keys.
    package func pem() -> [UInt8] {
        PEMBytes.withMemoryBIO { PEM_write_bio_PrivateKey_traditional($0, raw, nil, nil, 0, nil, nil) }
    }

    /// The uncompressed public point `04 || X || Y` (SEC 1 §2.3.3).
    private func publicPoint() -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 133)
        var n = 0
        guard EVP_PKEY_get_octet_string_param(raw, "encoded-pub-key", &buf, buf.count, &n) == 1 else {
            ERR_clear_error()
            return []
        }
        return Array(buf[0..<n])
    }

    /// The public key as a JWK (RFC 7517, RFC 7518 §6.2.1), members in the lexicographic order
    /// RFC 7638 §3.2 requires for the thumbprint: `crv`, `kty`, `x`, `y`.
    package var jwk: JSONValue {
        let p = publicPoint()
        let x = p.count == 65 ? Array(p[1..<33]) : []
        let y = p.count == 65 ? Array(p[33..<65]) : []
        return .object([
            ("crv", .string("P-256")), ("kty", .string("EC")),
            ("x", .string(Base64URL.encode(x))), ("y", .string(Base64URL.encode(y))),
        ])
    }

    /// The JWK thumbprint (RFC 7638 §3): base64url(SHA-256(canonical JWK)). Part of every key
    /// authorization (RFC 8555 §8.1).
    package var thumbprint: String {
        Base64URL.encode(Digest.sha256(jwk.bytes))
    }

    /// ES256 (RFC 7518 §3.4): ECDSA P-256 over SHA-256, the signature as the 64-byte `R || S`
    /// (OpenSSL produces DER `ECDSA-Sig-Value`, which is converted).
    package func signES256(_ message: [UInt8]) throws(ACMECryptoError) -> [UInt8] {
        ERR_clear_error()
        guard let md = EVP_MD_CTX_new() else { throw ACMECryptoError("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(md) }
        guard EVP_DigestSignInit(md, nil, EVP_sha256(), nil, raw) == 1 else {
            throw ACMECryptoError("EVP_DigestSignInit")
        }
        var der = [UInt8](repeating: 0, count: 80)
        var len = der.count
        let ok = message.withUnsafeBufferPointer { m in EVP_DigestSign(md, &der, &len, m.baseAddress, m.count) }
        guard ok == 1 else { throw ACMECryptoError("EVP_DigestSign") }
        return try Self.rawSignature(Array(der[0..<len]))
    }

    /// DER `SEQUENCE { r INTEGER, s INTEGER }` → `r || s`, each left-padded to 32 bytes.
    static func rawSignature(_ der: [UInt8]) throws(ACMECryptoError) -> [UInt8] {
        let sig: OpaquePointer? = der.withUnsafeBufferPointer { b in
            var p: UnsafePointer<UInt8>? = b.baseAddress
            return d2i_ECDSA_SIG(nil, &p, b.count)
        }
        guard let sig else { throw ACMECryptoError("d2i_ECDSA_SIG") }
        defer { ECDSA_SIG_free(sig) }
        var out = [UInt8](repeating: 0, count: 64)
        let ok = out.withUnsafeMutableBufferPointer { o in
            BN_bn2binpad(ECDSA_SIG_get0_r(sig), o.baseAddress, 32) == 32
                && BN_bn2binpad(ECDSA_SIG_get0_s(sig), o.baseAddress! + 32, 32) == 32
        }
        guard ok else { throw ACMECryptoError("ECDSA signature does not fit P-256") }
        return out
    }

    /// A PKCS#10 certificate signing request (RFC 2986) for `names`, DER-encoded, as RFC 8555
    /// §7.4 wants it in `finalize`: subjectAltName dNSName entries (iPAddress for IP literals,
    /// RFC 8738 §3), the first name also as the subject CN when it fits (64 characters),
    /// signed with this key (SHA-256).
    package func certificateSigningRequest(names: [String]) throws(ACMECryptoError) -> [UInt8] {
        guard !names.isEmpty else { throw ACMECryptoError("a CSR needs at least one name") }
        ERR_clear_error()
        guard let req = X509_REQ_new() else { throw ACMECryptoError("X509_REQ_new") }
        defer { X509_REQ_free(req) }
        guard X509_REQ_set_version(req, 0) == 1, X509_REQ_set_pubkey(req, raw) == 1 else {
            throw ACMECryptoError("X509_REQ_set_pubkey")
        }
        if names[0].utf8.count <= 64, let subject = X509_REQ_get_subject_name(req) {
            guard X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, names[0], -1, -1, 0) == 1 else {
                throw ACMECryptoError("CSR subject")
            }
        }
        let san = names.map { IPLiteral.isIP($0) ? "IP:\(IPLiteral.strip($0))" : "DNS:\($0)" }.joined(separator: ",")
        guard let ext = X509V3_EXT_conf_nid(nil, nil, NID_subject_alt_name, san) else {
            throw ACMECryptoError("CSR subjectAltName \(san)")
        }
        guard let stack = OPENSSL_sk_new_null() else {
            X509_EXTENSION_free(ext)
            throw ACMECryptoError("OPENSSL_sk_new_null")
        }
        defer {
            X509_EXTENSION_free(ext)
            OPENSSL_sk_free(stack)
        }
        guard OPENSSL_sk_push(stack, UnsafeRawPointer(ext)) > 0,
            X509_REQ_add_extensions(req, stack) == 1
        else { throw ACMECryptoError("X509_REQ_add_extensions") }
        guard X509_REQ_sign(req, raw, EVP_sha256()) > 0 else { throw ACMECryptoError("X509_REQ_sign") }
        var p: UnsafeMutablePointer<UInt8>?
        let n = i2d_X509_REQ(req, &p)
        guard n > 0, let p else { throw ACMECryptoError("i2d_X509_REQ") }
        defer { CRYPTO_free(p, nil, 0) }
        return Array(UnsafeBufferPointer(start: p, count: Int(n)))
    }
}

/// Hashes and MACs.
package enum Digest {
    /// SHA-256 (FIPS 180-4).
    package static func sha256(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var n: UInt32 = 0
        _ = data.withUnsafeBufferPointer { d in EVP_Digest(d.baseAddress, d.count, &out, &n, EVP_sha256(), nil) }
        return out
    }

    /// HMAC-SHA256 (RFC 2104), for External Account Binding's HS256 (RFC 8555 §7.3.4).
    package static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var n: UInt32 = 0
        _ = key.withUnsafeBufferPointer { k in
            data.withUnsafeBufferPointer { d in
                HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), d.baseAddress, d.count, &out, &n)
            }
        }
        return out
    }
}

/// PEM certificate helpers for what `TLSCertificate` does not expose.
package enum PEMBytes {
    /// The DER of the first certificate in a PEM bundle (the leaf), for revocation
    /// (RFC 8555 §7.6) and to compare certificates.
    package static func firstCertificateDER(_ pem: [UInt8]) -> [UInt8]? {
        ERR_clear_error()
        let x: OpaquePointer? = pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_X509(bio, nil, nil, nil)
        }
        guard let x else {
            ERR_clear_error()
            return nil
        }
        defer { X509_free(x) }
        var p: UnsafeMutablePointer<UInt8>?
        let n = i2d_X509(x, &p)
        guard n > 0, let p else { return nil }
        defer { CRYPTO_free(p, nil, 0) }
        return Array(UnsafeBufferPointer(start: p, count: Int(n)))
    }

    /// Every `-----BEGIN CERTIFICATE-----` block of a bundle, each as its own PEM.
    package static func splitCertificates(_ pem: [UInt8]) -> [[UInt8]] {
        let begin = Array("-----BEGIN CERTIFICATE-----".utf8)
        let end = Array("-----END CERTIFICATE-----".utf8)
        var out: [[UInt8]] = []
        var i = 0
        while let b = find(begin, in: pem, from: i), let e = find(end, in: pem, from: b + begin.count) {
            out.append(Array(pem[b..<(e + end.count)]) + [0x0A])
            i = e + end.count
        }
        return out
    }

    private static func find(_ needle: [UInt8], in hay: [UInt8], from start: Int) -> Int? {
        guard needle.count <= hay.count else { return nil }
        var i = start
        while i + needle.count <= hay.count {
            if hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }

    /// Runs `body` on a fresh memory BIO and returns what it wrote (empty on failure).
    static func withMemoryBIO(_ body: (OpaquePointer) -> Int32) -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { return [] }
        defer { BIO_free(bio) }
        guard body(bio) == 1 else { return [] }
        var p: UnsafeMutablePointer<CChar>?
        let n = berth_bio_get_mem_data(bio, &p)
        guard n > 0, let p else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }
}

/// IP literals in identifiers (RFC 8738): `ip` identifiers instead of `dns`.
package enum IPLiteral {
    /// True for an IPv4 or IPv6 literal (brackets allowed).
    package static func isIP(_ s: String) -> Bool {
        let t = strip(s)
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, t, &v4) == 1 || inet_pton(AF_INET6, t, &v6) == 1
    }

    /// Without `[` `]`.
    package static func strip(_ s: String) -> String {
        s.hasPrefix("[") && s.hasSuffix("]") ? String(s.dropFirst().dropLast()) : s
    }
}

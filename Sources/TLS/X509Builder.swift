internal import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

/// A private key (`EVP_PKEY`), owned and freed in `deinit`.
package final class TLSPrivateKey: @unchecked Sendable {
    let raw: OpaquePointer

    /// Takes ownership of one reference.
    init(owned raw: OpaquePointer) { self.raw = raw }
    deinit { EVP_PKEY_free(raw) }

    /// A new ECDSA key on `curve` (`"P-256"`, `"P-384"`): what the local CA uses, like Caddy.
    package static func generateECDSA(curve: String = "P-256") throws(TLSError) -> TLSPrivateKey {
        OpenSSLErrorQueue.clear()
        guard let k = berth_ec_gen(curve) else { throw TLSError.drain(.certificate, "generate EC key \(curve)") }
        return TLSPrivateKey(owned: k)
    }

    /// A new RSA key.
    package static func generateRSA(bits: Int = 2048) throws(TLSError) -> TLSPrivateKey {
        OpenSSLErrorQueue.clear()
        guard let k = berth_rsa_gen(UInt32(bits)) else { throw TLSError.drain(.certificate, "generate RSA key") }
        return TLSPrivateKey(owned: k)
    }

    /// Parses a PEM private key.
    package convenience init(pem: [UInt8]) throws(TLSError) {
        self.init(owned: try PEM.readPrivateKey(pem, what: "private key"))
    }

    /// PEM, traditional form (`EC PRIVATE KEY`), as Caddy writes its CA keys.
    package func pem() -> [UInt8] { PEM.write(privateKey: raw) }

    /// A new reference to the same key (for a `TLSCertificate` to own).
    func retained() -> OpaquePointer {
        EVP_PKEY_up_ref(raw)
        return raw
    }
}

/// Builds and signs X.509 v3 certificates (RFC 5280) with SHA-256: the local CA's root,
/// intermediate and leaves, and later ACME TLS-ALPN-01 challenge certificates
/// (`extraExtensions` carries id-pe-acmeIdentifier, RFC 8737 §3).
package struct X509Builder {
    /// Subject CN (none when nil).
    package var commonName: String?
    /// subjectAltName dNSName entries (RFC 5280 §4.2.1.6).
    package var dnsNames: [String] = []
    /// subjectAltName iPAddress entries, as text (`127.0.0.1`, `::1`).
    package var ipAddresses: [String] = []
    /// Validity, Unix seconds.
    package var notBefore: Int
    package var notAfter: Int
    /// basicConstraints cA (RFC 5280 §4.2.1.9) and pathLenConstraint.
    package var isCA = false
    package var pathLength: Int?
    /// keyUsage in OpenSSL's config syntax, always critical (RFC 5280 §4.2.1.3).
    package var keyUsage = "digitalSignature"
    /// extKeyUsage in OpenSSL's config syntax (RFC 5280 §4.2.1.12); nil for none.
    package var extendedKeyUsage: String? = "serverAuth,clientAuth"
    /// Additional extensions: dotted OID, criticality, DER contents.
    package var extraExtensions: [(oid: String, critical: Bool, der: [UInt8])] = []

    package init(commonName: String? = nil, notBefore: Int, notAfter: Int) {
        self.commonName = commonName
        self.notBefore = notBefore
        self.notAfter = notAfter
    }

    /// Signs a certificate for `key`, by `issuer` (its leaf and key) or self-signed when nil.
    /// The result's chain is the issuer followed by the issuer's chain, without self-signed
    /// roots (RFC 8446 §4.4.2: the root may be omitted).
    package func sign(key: TLSPrivateKey, issuer: TLSCertificate?) throws(TLSError) -> TLSCertificate {
        let x = try build(publicKey: key.raw, issuer: issuer, signingKey: issuer?.key ?? key.raw)
        var chain: [OpaquePointer] = []
        if let issuer {
            var all = [issuer.leaf]
            for i in 0..<berth_sk_x509_num(issuer.chain) {
                if let c = berth_sk_x509_value(issuer.chain, i) { all.append(c) }
            }
            for c in all where X509_check_issued(c, c) != X509_V_OK {
                X509_up_ref(c)
                chain.append(c)
            }
        }
        return try TLSCertificate(owned: x, chain: chain, key: key.retained())
    }

    private func build(publicKey: OpaquePointer, issuer: TLSCertificate?, signingKey: OpaquePointer) throws(TLSError)
        -> OpaquePointer
    {
        OpenSSLErrorQueue.clear()
        guard let x = X509_new() else { throw TLSError.drain(.certificate, "X509_new") }
        var ok = X509_set_version(x, 2) == 1  // v3
        ok = ok && X509Builder.setRandomSerial(x)
        ok = ok && ASN1_TIME_set(X509_getm_notBefore(x), time_t(notBefore)) != nil
        ok = ok && ASN1_TIME_set(X509_getm_notAfter(x), time_t(notAfter)) != nil
        let subject = X509_get_subject_name(x)
        if let cn = commonName {
            ok = ok && X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, cn, -1, -1, 0) == 1
        }
        ok = ok && X509_set_issuer_name(x, issuer.map { X509_get_subject_name($0.leaf) } ?? subject) == 1
        ok = ok && X509_set_pubkey(x, publicKey) == 1
        guard ok else {
            X509_free(x)
            throw TLSError.drain(.certificate, "build certificate")
        }

        var v3 = X509V3_CTX()
        X509V3_set_ctx(&v3, issuer?.leaf ?? x, x, nil, nil, 0)
        var exts: [(Int32, String)] = []
        if isCA {
            exts.append((NID_basic_constraints, "critical,CA:TRUE" + (pathLength.map { ",pathlen:\($0)" } ?? "")))
        } else {
            exts.append((NID_basic_constraints, "critical,CA:FALSE"))
        }
        exts.append((NID_key_usage, "critical," + keyUsage))
        if let eku = extendedKeyUsage { exts.append((NID_ext_key_usage, eku)) }
        exts.append((NID_subject_key_identifier, "hash"))
        if issuer != nil { exts.append((NID_authority_key_identifier, "keyid:always")) }
        for (nid, value) in exts {
            guard let ext = X509V3_EXT_conf_nid(nil, &v3, nid, value) else {
                X509_free(x)
                throw TLSError.drain(.certificate, "extension \(value)")
            }
            let added = X509_add_ext(x, ext, -1) == 1
            X509_EXTENSION_free(ext)
            guard added else {
                X509_free(x)
                throw TLSError.drain(.certificate, "X509_add_ext")
            }
        }
        do throws(TLSError) {
            if !dnsNames.isEmpty || !ipAddresses.isEmpty { try addSubjectAltName(x) }
            for e in extraExtensions { try X509Builder.addRaw(x, e.oid, e.critical, e.der) }
        } catch {
            X509_free(x)
            throw error
        }
        guard X509_sign(x, signingKey, EVP_sha256()) > 0 else {
            X509_free(x)
            throw TLSError.drain(.certificate, "X509_sign")
        }
        return x
    }

    /// RFC 5280 §4.2.1.6: critical only when the subject is empty.
    private func addSubjectAltName(_ x: OpaquePointer) throws(TLSError) {
        guard let names = berth_general_names_new() else { throw TLSError.drain(.certificate, "GENERAL_NAMES") }
        defer { GENERAL_NAMES_free(names) }
        for d in dnsNames {
            guard let gn = GENERAL_NAME_new(), let s = ASN1_IA5STRING_new() else {
                throw TLSError.drain(.certificate, "GENERAL_NAME")
            }
            _ = ASN1_STRING_set(s, d, Int32(d.utf8.count))
            GENERAL_NAME_set0_value(gn, GEN_DNS, s)
            _ = berth_general_names_push(names, gn)
        }
        for a in ipAddresses {
            guard let bytes = IPAddress.parse(a) else { throw TLSError(.certificate, "not an IP address: \(a)") }
            guard let gn = GENERAL_NAME_new(), let s = ASN1_OCTET_STRING_new() else {
                throw TLSError.drain(.certificate, "GENERAL_NAME")
            }
            _ = ASN1_OCTET_STRING_set(s, bytes, Int32(bytes.count))
            GENERAL_NAME_set0_value(gn, GEN_IPADD, s)
            _ = berth_general_names_push(names, gn)
        }
        let critical: Int32 = commonName == nil ? 1 : 0
        guard
            X509_add1_ext_i2d(
                x, NID_subject_alt_name, UnsafeMutableRawPointer(names), critical, UInt(X509V3_ADD_DEFAULT)) == 1
        else {
            throw TLSError.drain(.certificate, "subjectAltName")
        }
    }

    private static func addRaw(_ x: OpaquePointer, _ oid: String, _ critical: Bool, _ der: [UInt8]) throws(TLSError) {
        guard let obj = OBJ_txt2obj(oid, 1) else { throw TLSError.drain(.certificate, "OID \(oid)") }
        defer { ASN1_OBJECT_free(obj) }
        guard let data = ASN1_OCTET_STRING_new() else { throw TLSError.drain(.certificate, "ASN1_OCTET_STRING_new") }
        defer { ASN1_OCTET_STRING_free(data) }
        _ = ASN1_OCTET_STRING_set(data, der, Int32(der.count))
        guard let ext = X509_EXTENSION_create_by_OBJ(nil, obj, critical ? 1 : 0, data) else {
            throw TLSError.drain(.certificate, "extension \(oid)")
        }
        defer { X509_EXTENSION_free(ext) }
        guard X509_add_ext(x, ext, -1) == 1 else { throw TLSError.drain(.certificate, "X509_add_ext \(oid)") }
    }

    /// A random positive 127-bit serial number (RFC 5280 §4.1.2.2: ≤ 20 octets, unpredictable
    /// per CA/B Forum BR §7.1).
    private static func setRandomSerial(_ x: OpaquePointer) -> Bool {
        guard let bn = BN_new() else { return false }
        defer { BN_free(bn) }
        guard BN_rand(bn, 127, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY) == 1 else { return false }
        return BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != nil
    }
}

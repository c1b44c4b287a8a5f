internal import COpenSSL
import IOCore

#if canImport(Glibc)
import Glibc
#endif

/// A certificate chain and its private key, ready to be served: owns the leaf `X509`, the
/// intermediates (`STACK_OF(X509)`) and the `EVP_PKEY`, freed in `deinit`.
///
/// Immutable after creation and shared read-only by every event-loop thread; OpenSSL takes its
/// own references (`X509_up_ref`) when a handshake installs it, so a certificate replaced by a
/// hot swap stays valid for the connections that already use it.
package final class TLSCertificate: @unchecked Sendable, CustomStringConvertible {
    /// `X509 *` of the leaf.
    let leaf: OpaquePointer
    /// `STACK_OF(X509) *` of the intermediates sent after the leaf (never the root).
    let chain: OpaquePointer
    /// `EVP_PKEY *`.
    let key: OpaquePointer

    /// DNS names from the subjectAltName extension, lower-cased, wildcards kept as `*.x.y`;
    /// the subject common name when there is no DNS SAN (as certmagic indexes certificates).
    package let dnsNames: [String]
    /// IP addresses from the subjectAltName extension, in `inet_ntop` form.
    package let ipAddresses: [String]
    /// Subject common name, if any.
    package let commonName: String?
    /// Validity start, Unix seconds.
    package let notBefore: Int
    /// Validity end, Unix seconds.
    package let notAfter: Int

    /// Takes ownership of `leaf`, the intermediates in `chain` and `key` (one reference each);
    /// frees them if the key does not match the certificate.
    init(owned leaf: OpaquePointer, chain intermediates: [OpaquePointer], key: OpaquePointer) throws(TLSError) {
        self.leaf = leaf
        self.key = key
        let sk = berth_sk_x509_new_null()!
        for x in intermediates { _ = berth_sk_x509_push(sk, x) }
        self.chain = sk
        let info = X509Info(leaf)
        dnsNames = info.dnsNames
        ipAddresses = info.ipAddresses
        commonName = info.commonName
        notBefore = info.notBefore
        notAfter = info.notAfter
        OpenSSLErrorQueue.clear()
        if X509_check_private_key(leaf, key) != 1 {
            throw TLSError.drain(
                .certificate, "private key does not match certificate \(info.commonName ?? dnsNames.first ?? "")")
        }
    }

    deinit {
        berth_sk_x509_pop_free(chain)
        X509_free(leaf)
        EVP_PKEY_free(key)
    }

    /// Loads a chain (leaf first, then intermediates) and a private key from PEM bytes.
    /// Encrypted keys are refused rather than prompting on a terminal.
    package convenience init(certificatePEM: [UInt8], keyPEM: [UInt8]) throws(TLSError) {
        let certs = try PEM.readCertificates(certificatePEM, what: "certificate")
        let key: OpaquePointer
        do {
            key = try PEM.readPrivateKey(keyPEM, what: "private key")
        } catch {
            for c in certs { X509_free(c) }
            throw error
        }
        try self.init(owned: certs[0], chain: Array(certs.dropFirst()), key: key)
    }

    /// Loads `tls <cert.pem> <key.pem>`: a PEM chain file and a PEM key file.
    package convenience init(certificateFile: String, keyFile: String) throws(TLSError) {
        let certBytes: [UInt8]
        let keyBytes: [UInt8]
        do {
            certBytes = try FileIO.readAll(certificateFile, limit: 1 << 20)
            keyBytes = try FileIO.readAll(keyFile, limit: 1 << 20)
        } catch {
            throw TLSError(.io, error.description)
        }
        do {
            try self.init(certificatePEM: certBytes, keyPEM: keyBytes)
        } catch {
            var e = error
            e.message = "\(certificateFile), \(keyFile): \(e.message)"
            throw e
        }
    }

    /// Number of intermediates sent after the leaf.
    package var intermediateCount: Int { Int(berth_sk_x509_num(chain)) }

    /// Every name this certificate answers for: DNS names then IP addresses.
    package var names: [String] { dnsNames + ipAddresses }

    /// True once less than `1/3` of the lifetime remains (certmagic's default renewal window),
    /// or `ratio` of it when given.
    package func needsRenewal(now: Int, ratio: Double = 1.0 / 3.0) -> Bool {
        let lifetime = Double(notAfter - notBefore)
        return Double(notAfter - now) < lifetime * ratio
    }

    /// True when `now` is outside the validity period.
    package func isExpired(now: Int) -> Bool { now >= notAfter || now < notBefore }

    /// The leaf followed by the intermediates, PEM-encoded.
    package func certificateChainPEM() -> [UInt8] {
        var out = PEM.write(certificate: leaf)
        for i in 0..<berth_sk_x509_num(chain) {
            if let x = berth_sk_x509_value(chain, i) { out += PEM.write(certificate: x) }
        }
        return out
    }

    /// The leaf alone, PEM-encoded.
    package func leafPEM() -> [UInt8] { PEM.write(certificate: leaf) }

    /// The private key, PEM-encoded in the traditional form Caddy writes
    /// (`EC PRIVATE KEY` / `RSA PRIVATE KEY`).
    package func privateKeyPEM() -> [UInt8] { PEM.write(privateKey: key) }

    /// `"EC"`, `"RSA"`, `"ED25519"`, …
    package var keyType: String {
        EVP_PKEY_get0_type_name(key).map { String(cString: $0) } ?? "?"
    }

    package var description: String {
        "TLSCertificate(\((names.isEmpty ? [commonName ?? "?"] : names).joined(separator: ",")), notAfter: \(notAfter))"
    }
}

/// What the leaf of a peer's chain says (client side: which certificate the server served).
package struct TLSPeerCertificate: Sendable, Equatable {
    /// subjectAltName DNS names, lower-cased (the CN when there are none).
    package var dnsNames: [String]
    /// subjectAltName IP addresses.
    package var ipAddresses: [String]
    /// Subject common name.
    package var commonName: String?
    /// Validity start, Unix seconds.
    package var notBefore: Int
    /// Validity end, Unix seconds.
    package var notAfter: Int
}

/// Fields read from an `X509 *`.
struct X509Info {
    var dnsNames: [String] = []
    var ipAddresses: [String] = []
    var commonName: String?
    var notBefore = 0
    var notAfter = 0

    init(_ x: OpaquePointer) {
        if let gens = berth_x509_get_san(x) {
            for i in 0..<berth_general_names_num(gens) {
                guard let gn = berth_general_names_value(gens, i) else { continue }
                var type: Int32 = 0
                guard let v = GENERAL_NAME_get0_value(gn, &type) else { continue }
                let s = UnsafePointer(v.assumingMemoryBound(to: ASN1_STRING.self))
                guard let data = ASN1_STRING_get0_data(s) else { continue }
                let buf = UnsafeBufferPointer(start: data, count: Int(ASN1_STRING_length(s)))
                if type == GEN_DNS {
                    dnsNames.append(String(decoding: buf, as: UTF8.self).lowercased())
                } else if type == GEN_IPADD, let ip = IPAddress.format(UnsafeRawBufferPointer(buf)) {
                    ipAddresses.append(ip)
                }
            }
            GENERAL_NAMES_free(gens)
        }
        if let subject = X509_get_subject_name(x) {
            let idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1)
            if idx >= 0, let entry = X509_NAME_get_entry(subject, idx), let s = X509_NAME_ENTRY_get_data(entry) {
                var out: UnsafeMutablePointer<UInt8>?
                let n = ASN1_STRING_to_UTF8(&out, s)
                if n >= 0, let out {
                    commonName = String(decoding: UnsafeBufferPointer(start: out, count: Int(n)), as: UTF8.self)
                    CRYPTO_free(out, nil, 0)
                }
            }
        }
        if dnsNames.isEmpty, ipAddresses.isEmpty, let cn = commonName, !cn.isEmpty, !cn.contains(" ") {
            dnsNames.append(cn.lowercased())
        }
        notBefore = ASN1Time.unixSeconds(X509_get0_notBefore(x))
        notAfter = ASN1Time.unixSeconds(X509_get0_notAfter(x))
    }

    var peer: TLSPeerCertificate {
        TLSPeerCertificate(
            dnsNames: dnsNames, ipAddresses: ipAddresses, commonName: commonName,
            notBefore: notBefore, notAfter: notAfter)
    }
}

/// ASN1_TIME ↔ Unix seconds.
enum ASN1Time {
    static func unixSeconds(_ t: UnsafePointer<ASN1_TIME>?) -> Int {
        guard let t else { return 0 }
        var tm = Glibc.tm()
        guard ASN1_TIME_to_tm(t, &tm) == 1 else { return 0 }
        return Int(timegm(&tm))
    }
}

/// IP address text ↔ bytes (inet_pton / inet_ntop).
package enum IPAddress {
    /// The 4 or 16 address bytes of `text`, or nil when it is not an IP literal.
    /// Accepts `[::1]` brackets.
    package static func parse(_ text: String) -> [UInt8]? {
        var t = Substring(text)
        if t.hasPrefix("["), t.hasSuffix("]") { t = t.dropFirst().dropLast() }
        let s = String(t)
        var v4 = in_addr()
        if inet_pton(AF_INET, s, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, s, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// Canonical text of 4 or 16 address bytes.
    package static func format(_ bytes: UnsafeRawBufferPointer) -> String? {
        let family: Int32
        switch bytes.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return nil
        }
        var buf = [CChar](repeating: 0, count: 64)
        guard inet_ntop(family, bytes.baseAddress, &buf, socklen_t(buf.count)) != nil else { return nil }
        return buf.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Canonical text of an address given as text (so `0:0::1` and `::1` compare equal).
    package static func canonical(_ text: String) -> String? {
        guard let b = parse(text) else { return nil }
        return b.withUnsafeBytes { format($0) }
    }
}

/// PEM reading and writing through memory BIOs.
enum PEM {
    /// A password callback that refuses, so an encrypted key fails instead of prompting on a
    /// terminal (OpenSSL's default callback reads the tty).
    static let noPassword:
        @convention(c) (UnsafeMutablePointer<CChar>?, Int32, Int32, UnsafeMutableRawPointer?) -> Int32 = {
            _, _, _, _ in 0
        }

    /// Every certificate in `pem`, in order; at least one.
    static func readCertificates(_ pem: [UInt8], what: String) throws(TLSError) -> [OpaquePointer] {
        OpenSSLErrorQueue.clear()
        var out: [OpaquePointer] = []
        let failed: Bool = pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return true }
            defer { BIO_free(bio) }
            while let x = PEM_read_bio_X509(bio, nil, noPassword, nil) { out.append(x) }
            let last = ERR_peek_last_error()
            if !out.isEmpty, ERR_GET_LIB(last) == ERR_LIB_PEM, ERR_GET_REASON(last) == PEM_R_NO_START_LINE {
                OpenSSLErrorQueue.clear()  // normal end of the bundle
                return false
            }
            return true
        }
        if failed || out.isEmpty {
            for x in out { X509_free(x) }
            throw TLSError.drain(.certificate, "no valid PEM \(what) found")
        }
        return out
    }

    /// The first private key in `pem` (PKCS#8, SEC1 `EC PRIVATE KEY` or PKCS#1).
    static func readPrivateKey(_ pem: [UInt8], what: String) throws(TLSError) -> OpaquePointer {
        OpenSSLErrorQueue.clear()
        let key: OpaquePointer? = pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, noPassword, nil)
        }
        guard let key else { throw TLSError.drain(.certificate, "no valid PEM \(what) found") }
        OpenSSLErrorQueue.clear()
        return key
    }

    static func write(certificate x: OpaquePointer) -> [UInt8] {
        withMemoryBIO { PEM_write_bio_X509($0, x) }
    }

    static func write(privateKey k: OpaquePointer) -> [UInt8] {
        let out = withMemoryBIO { PEM_write_bio_PrivateKey_traditional($0, k, nil, nil, 0, nil, nil) }
        if !out.isEmpty { return out }
        OpenSSLErrorQueue.clear()
        return withMemoryBIO { PEM_write_bio_PrivateKey($0, k, nil, nil, 0, nil, nil) }
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

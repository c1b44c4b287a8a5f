internal import COpenSSL
import IOCore

#if canImport(Glibc)
import Glibc
#endif

/// How a server asks for and checks client certificates (Caddy's `client_auth { mode }`,
/// Go's `tls.ClientAuthType`).
package enum TLSClientAuthMode: String, Sendable, Equatable {
    /// Ask for a certificate; accept a connection without one; never verify it.
    case request
    /// Require a certificate; do not verify it.
    case require
    /// Ask; accept none; verify one if it is sent.
    case verifyIfGiven = "verify_if_given"
    /// Require a certificate that verifies.
    case requireAndVerify = "require_and_verify"

    /// Whether a presented certificate is verified against the trusted CAs.
    var verifies: Bool { self == .verifyIfGiven || self == .requireAndVerify }
}

/// One site's client-authentication policy, applied to the handshakes whose SNI (or, without
/// SNI, local IP) matches `serverNames` — Caddy's connection policy with an `sni` matcher.
///
/// Owns an `X509_STORE` of trusted CAs (the system store when a verifying mode has no CAs,
/// as Go's `ClientCAs == nil` means the system roots) and the DER bytes of trusted leaves.
/// Immutable after creation; shared by every loop thread.
package final class TLSClientAuthPolicy: @unchecked Sendable {
    /// The effective mode (Caddy's default: `require_and_verify` when CAs or leaves are given,
    /// else `require`).
    package let mode: TLSClientAuthMode
    /// Lower-cased names (`*.x.y` wildcards allowed); empty matches every handshake.
    package let serverNames: [String]
    /// `X509_STORE *` for verifying modes.
    let store: OpaquePointer?
    /// `STACK_OF(X509_NAME) *`: the CA subjects announced in CertificateRequest (as Go does).
    let caNames: OpaquePointer?
    /// DER of every trusted leaf; when non-empty the client's leaf must be one of them (and a
    /// certificate is therefore always required, like Caddy's leaf verifier).
    let trustedLeaves: [[UInt8]]
    /// SHA-256 of the policy: the session-ID context of its handshakes, so a ticket issued
    /// under another policy (or none) is never resumed here (RFC 8446 §4.6.1 binds resumption
    /// to the original authentication).
    let sessionContext: [UInt8]

    /// `trustedCAs` and `trustedLeaves` are DER certificates.
    package init(
        mode explicitMode: TLSClientAuthMode?, serverNames: [String], trustedCAs: [[UInt8]], trustedLeaves: [[UInt8]]
    ) throws(TLSError) {
        let mode = explicitMode ?? (trustedCAs.isEmpty && trustedLeaves.isEmpty ? .require : .requireAndVerify)
        self.mode = mode
        self.serverNames = serverNames.map { $0.lowercased() }
        var leaves: [[UInt8]] = []
        for der in trustedLeaves {
            let x = try Self.parse(der, what: "trusted leaf certificate")
            leaves.append(Self.der(x))
            X509_free(x)
        }
        self.trustedLeaves = leaves
        var cas: [OpaquePointer] = []
        for der in trustedCAs { cas.append(try Self.parse(der, what: "trusted CA certificate")) }
        defer { for x in cas { X509_free(x) } }
        if mode.verifies {
            guard let st = X509_STORE_new() else { throw TLSError.drain(.configuration, "X509_STORE_new") }
            if cas.isEmpty {
                _ = X509_STORE_set_default_paths(st)
            } else {
                for x in cas { _ = X509_STORE_add_cert(st, x) }
            }
            store = st
        } else {
            store = nil
        }
        if cas.isEmpty {
            caNames = nil
        } else {
            let sk = berth_sk_x509_name_new_null()
            for x in cas { if let n = X509_NAME_dup(X509_get_subject_name(x)) { _ = berth_sk_x509_name_push(sk, n) } }
            caNames = sk
        }
        // The policy's identity: mode, CAs, leaves (length-prefixed so boundaries count).
        var material: [UInt8] = Array("berth-client-auth/\(mode.rawValue)".utf8)
        for der in trustedCAs.map({ [UInt8(ascii: "C")] + $0 }) + leaves.map({ [UInt8(ascii: "L")] + $0 }) {
            withUnsafeBytes(of: UInt32(der.count).bigEndian) { material += $0 }
            material += der
        }
        var md = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var n: UInt32 = 0
        _ = EVP_Digest(material, material.count, &md, &n, EVP_sha256(), nil)
        sessionContext = Array(md.prefix(Int(min(n, UInt32(SSL_MAX_SID_CTX_LENGTH)))))
        OpenSSLErrorQueue.clear()
    }

    deinit {
        if let store { X509_STORE_free(store) }
        if let caNames { berth_sk_x509_name_pop_free(caNames) }
    }

    /// True when this policy covers a handshake for `serverName` (already lower-cased) or,
    /// without SNI, arriving on `localAddress`.
    func matches(serverName: String?, localAddress: String?) -> Bool {
        if serverNames.isEmpty { return true }
        guard let name = serverName ?? localAddress else { return false }
        for pattern in serverNames {
            if pattern == name { return true }
            // One label for `*` (certmagic.MatchWildcard).
            if pattern.hasPrefix("*."), let dot = name.firstIndex(of: "."),
                name[name.index(after: dot)...] == pattern.dropFirst(2), name[..<dot].count > 0
            {
                return true
            }
        }
        return false
    }

    /// Sets this policy on a handshake that has not yet processed its extensions
    /// (client_hello callback): verify flags, CA store and names, session-ID context.
    func apply(to ssl: OpaquePointer) {
        var flags = SSL_VERIFY_PEER
        if mode == .require || mode == .requireAndVerify || !trustedLeaves.isEmpty {
            flags |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT
        }
        SSL_set_verify(ssl, flags, nil)
        if let store { _ = berth_ssl_set1_verify_cert_store(ssl, store) }
        if let caNames, let dup = SSL_dup_CA_list(caNames) { SSL_set0_CA_list(ssl, dup) }
        _ = SSL_set_session_id_context(ssl, sessionContext, UInt32(sessionContext.count))
    }

    /// Checks the client's chain (`SSL_CTX_set_cert_verify_callback`): the leaf against the
    /// trusted leaves, then the chain against the CAs in verifying modes.
    func verify(_ storeCtx: OpaquePointer) -> Bool {
        if !trustedLeaves.isEmpty {
            guard let leaf = X509_STORE_CTX_get0_cert(storeCtx) else { return false }
            let d = Self.der(leaf)
            if !trustedLeaves.contains(d) {
                X509_STORE_CTX_set_error(storeCtx, X509_V_ERR_CERT_REJECTED)
                return false
            }
        }
        if mode.verifies { return X509_verify_cert(storeCtx) == 1 }
        return true
    }

    /// A certificate is required (require modes, or trusted leaves).
    package var requiresCertificate: Bool {
        mode == .require || mode == .requireAndVerify || !trustedLeaves.isEmpty
    }

    /// The same decision as the OpenSSL handshake's, for a chain (DER, leaf first) another
    /// TLS stack received — QUIC's GnuTLS handshake, or a resumed QUIC session's stored
    /// peer certificates. An empty chain passes only when no certificate is required.
    package func accepts(chain: [[UInt8]]) -> Bool {
        guard let leafDER = chain.first else { return !requiresCertificate }
        if !trustedLeaves.isEmpty && !trustedLeaves.contains(leafDER) { return false }
        guard mode.verifies, let store else { return true }
        OpenSSLErrorQueue.clear()
        defer { OpenSSLErrorQueue.clear() }
        var certs: [OpaquePointer] = []
        defer { for x in certs { X509_free(x) } }
        for der in chain {
            guard let x = try? Self.parse(der, what: "client certificate") else { return false }
            certs.append(x)
        }
        guard let untrusted = berth_sk_x509_new_null() else { return false }
        defer { berth_sk_x509_pop_free(untrusted) }
        for x in certs.dropFirst() {
            X509_up_ref(x)
            _ = berth_sk_x509_push(untrusted, x)
        }
        guard let ctx = X509_STORE_CTX_new() else { return false }
        defer { X509_STORE_CTX_free(ctx) }
        guard X509_STORE_CTX_init(ctx, store, certs[0], untrusted) == 1 else { return false }
        // What OpenSSL's server handshake checks for a client chain.
        _ = X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT)
        return X509_verify_cert(ctx) == 1
    }

    /// The placeholder facts of a DER leaf (nil when it does not parse).
    package static func facts(leaf der: [UInt8]) -> TLSClientCertificateFacts? {
        guard let x = try? parse(der, what: "client certificate") else {
            OpenSSLErrorQueue.clear()
            return nil
        }
        defer { X509_free(x) }
        return TLSClientCertificateFacts(x)
    }

    /// True when this policy covers a handshake for `serverName` or, without SNI, arriving
    /// on `localAddress` (package-wide: QUIC's handshakes pick their policy too).
    package func covers(serverName: String?, localAddress: String?) -> Bool {
        matches(serverName: serverName?.lowercased(), localAddress: localAddress)
    }

    private static func parse(_ der: [UInt8], what: String) throws(TLSError) -> OpaquePointer {
        OpenSSLErrorQueue.clear()
        let x: OpaquePointer? = der.withUnsafeBufferPointer { b in
            var p: UnsafePointer<UInt8>? = b.baseAddress
            return d2i_X509(nil, &p, b.count)
        }
        guard let x else { throw TLSError.drain(.certificate, "invalid \(what) (not a DER X.509 certificate)") }
        return x
    }

    static func der(_ x: OpaquePointer) -> [UInt8] {
        var p: UnsafeMutablePointer<UInt8>?
        let n = i2d_X509(x, &p)
        guard n > 0, let p else { return [] }
        defer { berth_openssl_free(p) }
        return Array(UnsafeBufferPointer(start: p, count: Int(n)))
    }

    /// DER certificates from PEM bytes (`trusted_ca_cert_file`, `trusted_leaf_cert_file`).
    package static func derCertificates(pem: [UInt8], what: String) throws(TLSError) -> [[UInt8]] {
        let xs = try PEM.readCertificates(pem, what: what)
        defer { for x in xs { X509_free(x) } }
        return xs.map { der($0) }
    }
}

/// `SSL_CTX_set_cert_verify_callback` for contexts with client-auth policies: the policy
/// chosen in the client_hello callback decides; connections without one are not asked for a
/// certificate, so reaching here without a policy means plain verification.
let clientCertVerifyCallback: @convention(c) (OpaquePointer?, UnsafeMutableRawPointer?) -> Int32 = { storeCtx, _ in
    guard let storeCtx,
        let p = X509_STORE_CTX_get_ex_data(storeCtx, SSL_get_ex_data_X509_STORE_CTX_idx()),
        let connection = TLSConnection.from(OpaquePointer(p))
    else { return 0 }
    guard let policy = connection.clientAuthPolicy else { return X509_verify_cert(storeCtx) == 1 ? 1 : 0 }
    return policy.verify(storeCtx) ? 1 : 0
}

/// What a client certificate says, for `{http.request.tls.client.*}` placeholders (Caddy's
/// formats: Go's `pkix.Name` string for subject and issuer, decimal serial, SHA-256 hex).
package struct TLSClientCertificateFacts: Sendable, Equatable {
    /// RFC 2253 form, e.g. `CN=alice,O=Example`.
    package var subject: String
    package var issuer: String
    /// Decimal.
    package var serial: String
    /// Lower-case hex SHA-256 of the DER.
    package var fingerprint: String
    /// PEM with a trailing newline.
    package var pem: String

    init(_ x: OpaquePointer) {
        subject = Self.name(X509_get_subject_name(x))
        issuer = Self.name(X509_get_issuer_name(x))
        var s = ""
        if let bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nil) {
            if let dec = BN_bn2dec(bn) {
                s = String(cString: dec)
                berth_openssl_free(dec)
            }
            BN_free(bn)
        }
        serial = s
        var md = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var n: UInt32 = 0
        _ = X509_digest(x, EVP_sha256(), &md, &n)
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var f: [UInt8] = []
        for b in md.prefix(Int(n)) {
            f.append(hex[Int(b >> 4)])
            f.append(hex[Int(b & 15)])
        }
        fingerprint = String(decoding: f, as: UTF8.self)
        pem = String(decoding: PEM.write(certificate: x), as: UTF8.self)
        OpenSSLErrorQueue.clear()
    }

    private static func name(_ n: OpaquePointer?) -> String {
        guard let n else { return "" }
        let bytes = PEM.withMemoryBIO { bio in
            X509_NAME_print_ex(bio, n, 0, berth_xn_flag_rfc2253_utf8()) >= 0 ? 1 : 0
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

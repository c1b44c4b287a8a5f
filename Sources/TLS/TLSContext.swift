internal import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

/// `SSL_CTX` ex_data slot holding an unretained `TLSContext` (for callbacks that only get an
/// `SSL *`, like the ticket-key callback).
let contextExDataIndex: Int32 = berth_ssl_ctx_get_ex_new_index()

/// Owns one `SSL_CTX`: protocol versions, suites, groups, ALPN policy, the certificate source
/// consulted by the SNI callback, and the ticket-key ring.
///
/// Built once per listener (server) or per upstream (client) and then immutable, so it is shared
/// by every event-loop thread; the mutable parts (certificate snapshot, ticket keys) live in
/// their own locked objects. Connections keep their context alive (the callbacks reach it
/// through unretained pointers).
package final class TLSContext: @unchecked Sendable {
    /// Which side of the handshake this context is for.
    package enum Role: Sendable { case server, client }

    /// Server or client.
    package let role: Role
    /// `SSL_CTX *`.
    let raw: OpaquePointer
    /// ALPN protocols in preference order (offered by a client, selected from by a server).
    package let applicationProtocols: [ApplicationProtocol]
    /// Server: the certificates to serve.
    package let certificates: CertificateSource?
    /// Server: the session-ticket keys (nil: tickets off).
    package let ticketKeys: TicketKeyRing?
    /// Server: ACME TLS-ALPN-01 challenge certificates.
    package let acmeChallengeCertificates: CertificateSource?
    /// Client: whether the peer's chain and name are verified.
    package let verifiesPeer: Bool
    /// ALPN names as wire bytes, parallel to `applicationProtocols` (select callback).
    let alpnWire: [[UInt8]]
    /// Server offers h2 (enables Go's http/1.1 fallback in ALPN selection).
    let offersH2: Bool
    /// Server: client-auth policies by SNI (empty: never ask for a client certificate).
    package let clientAuthPolicies: [TLSClientAuthPolicy]

    // MARK: Server

    /// Builds a server context.
    package init(server c: TLSServerConfiguration) throws(TLSError) {
        guard c.minimumVersion >= .tls12, c.minimumVersion <= c.maximumVersion else {
            throw TLSError(
                .configuration,
                "server TLS versions must be within TLS 1.2–1.3 (got \(c.minimumVersion)–\(c.maximumVersion))")
        }
        for p in c.applicationProtocols where !p.isValid {
            throw TLSError(.configuration, "invalid ALPN protocol name \"\(p.name)\" (RFC 7301 §3.1)")
        }
        OpenSSLErrorQueue.clear()
        guard let ctx = SSL_CTX_new(TLS_server_method()) else {
            throw TLSError.drain(.configuration, "SSL_CTX_new")
        }
        raw = ctx
        role = .server
        let protocols = c.applicationProtocols.filter { $0 != .acmeTLS1 }
        applicationProtocols = protocols
        alpnWire = protocols.map { Array($0.name.utf8) }
        offersH2 = protocols.contains(.h2)
        certificates = c.certificates
        ticketKeys = c.ticketKeys
        acmeChallengeCertificates = c.acmeChallengeCertificates
        clientAuthPolicies = c.clientAuthPolicies
        verifiesPeer = false
        // From here on `deinit` frees `raw` if a step throws.

        try TLSContext.setVersions(ctx, c.minimumVersion, c.maximumVersion)
        var options =
            berth_ssl_op_no_compression()  // CRIME; RFC 7457 §2.6
            | berth_ssl_op_no_renegotiation()  // RFC 7457 §2.10; RFC 8446 has none
            | berth_ssl_op_cipher_server_preference()
            | berth_ssl_op_prioritize_chacha()
        if c.ticketKeys == nil { options |= berth_ssl_op_no_ticket() }
        _ = berth_ssl_ctx_set_options(ctx, options)
        // The SNI callback installs the whole chain; never build one from a store.
        var mode = Int(SSL_MODE_NO_AUTO_CHAIN)
        if c.releaseIdleBuffers { mode |= Int(SSL_MODE_RELEASE_BUFFERS) }
        _ = berth_ssl_ctx_set_mode(ctx, mode)

        if c.tls12Ciphers == "" {
            // Only TLS 1.3 suites were named (Go then has no TLS 1.2 suite either).
            try TLSContext.setVersions(ctx, .tls13, c.maximumVersion)
        } else if SSL_CTX_set_cipher_list(ctx, c.tls12Ciphers ?? TLSServerConfiguration.tls12CipherList) != 1 {
            throw TLSError.drain(.configuration, "SSL_CTX_set_cipher_list")
        }
        guard SSL_CTX_set_ciphersuites(ctx, TLSServerConfiguration.tls13CipherSuites) == 1 else {
            throw TLSError.drain(.configuration, "SSL_CTX_set_ciphersuites")
        }
        guard berth_ssl_ctx_set1_groups_list(ctx, c.keyExchangeGroups ?? TLSServerConfiguration.groups) == 1 else {
            throw TLSError.drain(.configuration, "SSL_CTX_set1_groups_list \(c.keyExchangeGroups ?? "")")
        }

        // Resumption is stateless (tickets) only: no server-side session-ID cache to grow.
        _ = berth_ssl_ctx_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
        let sid: StaticString = "berth"
        _ = SSL_CTX_set_session_id_context(ctx, sid.utf8Start, UInt32(sid.utf8CodeUnitCount))
        if let ring = c.ticketKeys {
            // A ticket decrypts under the current or the previous key, so it lives at most two
            // rotation intervals; RFC 8446 §4.6.1 caps ticket_lifetime at 7 days.
            _ = SSL_CTX_set_timeout(ctx, min(2 * ring.rotationInterval, 604_800))
            _ = SSL_CTX_set_num_tickets(ctx, max(0, c.ticketsPerHandshake))
        } else {
            _ = SSL_CTX_set_num_tickets(ctx, 0)
        }

        let me = Unmanaged.passUnretained(self).toOpaque()
        _ = SSL_CTX_set_ex_data(ctx, contextExDataIndex, me)
        _ = berth_ssl_ctx_set_tlsext_servername_callback(ctx, serverNameCallback)
        _ = berth_ssl_ctx_set_tlsext_servername_arg(ctx, me)
        SSL_CTX_set_alpn_select_cb(ctx, alpnSelectCallback, me)
        if c.ticketKeys != nil {
            _ = SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticketKeyCallback)
        }
        if c.acmeChallengeCertificates != nil || !c.clientAuthPolicies.isEmpty {
            SSL_CTX_set_client_hello_cb(ctx, clientHelloCallback, me)
        }
        if !c.clientAuthPolicies.isEmpty {
            SSL_CTX_set_cert_verify_callback(ctx, clientCertVerifyCallback, nil)
        }
        OpenSSLErrorQueue.clear()
    }

    // MARK: Client

    /// Builds a client context.
    package init(client c: TLSClientConfiguration) throws(TLSError) {
        for p in c.applicationProtocols where !p.isValid {
            throw TLSError(.configuration, "invalid ALPN protocol name \"\(p.name)\" (RFC 7301 §3.1)")
        }
        OpenSSLErrorQueue.clear()
        guard let ctx = SSL_CTX_new(TLS_client_method()) else {
            throw TLSError.drain(.configuration, "SSL_CTX_new")
        }
        raw = ctx
        role = .client
        applicationProtocols = c.applicationProtocols
        alpnWire = c.applicationProtocols.map { Array($0.name.utf8) }
        offersH2 = false
        clientAuthPolicies = []
        certificates = nil
        ticketKeys = nil
        acmeChallengeCertificates = nil
        if case .insecureNoVerification = c.trustRoots { verifiesPeer = false } else { verifiesPeer = true }

        if let level = c.securityLevel { SSL_CTX_set_security_level(ctx, Int32(level)) }
        try TLSContext.setVersions(ctx, c.minimumVersion, c.maximumVersion)
        _ = berth_ssl_ctx_set_options(ctx, berth_ssl_op_no_compression() | berth_ssl_op_no_renegotiation())
        if let list = c.cipherList, SSL_CTX_set_cipher_list(ctx, list) != 1 {
            throw TLSError.drain(.configuration, "SSL_CTX_set_cipher_list \(list)")
        }
        if let suites = c.cipherSuites, SSL_CTX_set_ciphersuites(ctx, suites) != 1 {
            throw TLSError.drain(.configuration, "SSL_CTX_set_ciphersuites \(suites)")
        }
        if let groups = c.groups, berth_ssl_ctx_set1_groups_list(ctx, groups) != 1 {
            throw TLSError.drain(.configuration, "SSL_CTX_set1_groups_list \(groups)")
        }
        if !c.applicationProtocols.isEmpty {
            let wire = c.applicationProtocols.flatMap(\.wire)
            // Note the inverted convention: 0 is success here.
            guard SSL_CTX_set_alpn_protos(ctx, wire, UInt32(wire.count)) == 0 else {
                throw TLSError.drain(.configuration, "SSL_CTX_set_alpn_protos")
            }
        }
        switch c.trustRoots {
        case .system:
            guard SSL_CTX_set_default_verify_paths(ctx) == 1 else {
                throw TLSError.drain(.configuration, "SSL_CTX_set_default_verify_paths")
            }
        case .pem(let bytes):
            let certs = try PEM.readCertificates(bytes, what: "trusted certificate")
            let store = SSL_CTX_get_cert_store(ctx)
            for x in certs {
                _ = X509_STORE_add_cert(store, x)
                X509_free(x)
            }
        case .file(let path):
            guard SSL_CTX_load_verify_file(ctx, path) == 1 else {
                throw TLSError.drain(.configuration, "load trusted certificates \(path)")
            }
        case .insecureNoVerification:
            break
        }
        SSL_CTX_set_verify(ctx, verifiesPeer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nil)
        if let cert = c.certificate {
            guard SSL_CTX_use_cert_and_key(ctx, cert.leaf, cert.key, cert.chain, 1) == 1 else {
                throw TLSError.drain(.certificate, "SSL_CTX_use_cert_and_key")
            }
        }
        // Sessions are handed to the application (TLSConnection.session) through the new-session
        // callback, which is how TLS 1.3 tickets arriving after the handshake are seen.
        _ = berth_ssl_ctx_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE))
        SSL_CTX_sess_set_new_cb(ctx, newSessionCallback)
        _ = SSL_CTX_set_ex_data(ctx, contextExDataIndex, Unmanaged.passUnretained(self).toOpaque())
        OpenSSLErrorQueue.clear()
    }

    deinit {
        SSL_CTX_free(raw)
    }

    /// The `TLSContext` stored in an `SSL_CTX`'s ex_data, if any.
    static func from(_ ctx: OpaquePointer?) -> TLSContext? {
        guard let ctx, let p = SSL_CTX_get_ex_data(ctx, contextExDataIndex) else { return nil }
        return Unmanaged<TLSContext>.fromOpaque(p).takeUnretainedValue()
    }

    private static func setVersions(_ ctx: OpaquePointer, _ lo: TLSVersion, _ hi: TLSVersion) throws(TLSError) {
        guard berth_ssl_ctx_set_min_proto(ctx, lo.openSSL) == 1, berth_ssl_ctx_set_max_proto(ctx, hi.openSSL) == 1
        else {
            throw TLSError.drain(.configuration, "set protocol versions \(lo)–\(hi)")
        }
    }
}

internal import CGnuTLS
internal import CNGTCP2
#if canImport(Glibc)
import Glibc
#endif

/// Random bytes from GnuTLS's CSPRNG (connection IDs, reset padding, ngtcp2's `rand`).
enum QUICRandom {
    @inline(__always)
    static func fill(_ p: UnsafeMutableRawPointer, count: Int) {
        if count > 0 { _ = gnutls_rnd(GNUTLS_RND_RANDOM, p, count) }
    }
}

/// An error setting up QUIC TLS.
package struct QUICTLSError: Error, CustomStringConvertible {
    package let description: String
    init(_ what: String, _ rv: Int32) {
        description = "\(what): \(String(cString: gnutls_strerror(rv)))"
    }
}

/// Owns one `gnutls_certificate_credentials_t` holding every certificate of a server (chain
/// and key, PEM). GnuTLS picks the certificate whose names match the client's SNI and falls
/// back to the first one, so one credentials object serves every site of a server. Sessions
/// keep a strong reference: GnuTLS does not count references to credentials.
package final class QUICTLSCredentials: @unchecked Sendable {
    let raw: gnutls_certificate_credentials_t

    /// Loads `certificates` (each a PEM chain, leaf first, and its PEM private key).
    package init(certificates: [(chainPEM: [UInt8], keyPEM: [UInt8])]) throws(QUICTLSError) {
        var c: gnutls_certificate_credentials_t? = nil
        let rv = gnutls_certificate_allocate_credentials(&c)
        guard rv == 0, let c else { throw QUICTLSError("gnutls_certificate_allocate_credentials", rv) }
        raw = c
        for (chain, key) in certificates {
            var chain = chain
            var key = key
            let r: Int32 = chain.withUnsafeMutableBytes { cb in
                key.withUnsafeMutableBytes { kb in
                    var cd = gnutls_datum_t(data: cb.baseAddress?.assumingMemoryBound(to: UInt8.self), size: UInt32(cb.count))
                    var kd = gnutls_datum_t(data: kb.baseAddress?.assumingMemoryBound(to: UInt8.self), size: UInt32(kb.count))
                    return gnutls_certificate_set_x509_key_mem2(raw, &cd, &kd, GNUTLS_X509_FMT_PEM, nil, 0)
                }
            }
            // The key buffer held a private key: wipe our copy.
            key.withUnsafeMutableBytes { if let b = $0.baseAddress { memset(b, 0, $0.count) } }
            if r < 0 { throw QUICTLSError("loading a certificate into GnuTLS", r) }
        }
    }

    deinit { gnutls_certificate_free_credentials(raw) }

    /// TLS 1.3 only (RFC 9001 §4.2), the QUIC cipher suites (RFC 9001 §5.3) in the server's
    /// order, no middlebox compatibility mode (RFC 9001 §8.4).
    static var priority: gnutls_priority_t? { QUICPriority.shared.raw }
}

/// The key GnuTLS encrypts QUIC session tickets with (RFC 8446 §4.6.1), 64 bytes derived from
/// the endpoint's static secret (HMAC-SHA256 with two labels), so tickets stay valid across
/// restarts and between instances sharing the data directory, like the Retry and reset
/// tokens. GnuTLS rotates the key it actually uses from this one (gnutls_session_ticket_enable_server).
final class QUICTicketKey {
    let bytes: UnsafeMutablePointer<UInt8>
    let datum: UnsafeMutablePointer<gnutls_datum_t>

    init(secret: [UInt8]) {
        let b = UnsafeMutablePointer<UInt8>.allocate(capacity: 64)
        for (i, label) in ["berth quic session ticket key 0", "berth quic session ticket key 1"].enumerated() {
            var l = Array(label.utf8)
            _ = secret.withUnsafeBytes { k in
                gnutls_hmac_fast(GNUTLS_MAC_SHA256, k.baseAddress, k.count, &l, l.count, b + 32 * i)
            }
        }
        bytes = b
        datum = .allocate(capacity: 1)
        datum.initialize(to: gnutls_datum_t(data: bytes, size: 64))
    }

    deinit {
        bytes.update(repeating: 0, count: 64)
        bytes.deallocate()
        datum.deinitialize(count: 1)
        datum.deallocate()
    }
}

/// The process-wide GnuTLS priority cache (immutable once built; GnuTLS only reads it).
final class QUICPriority: @unchecked Sendable {
    let raw: gnutls_priority_t?
    static let shared = QUICPriority()
    private init() {
        var p: gnutls_priority_t? = nil
        // Server order (AES-128-GCM first, as Go's TLS 1.3 server picks on AES hardware).
        let s = "%DISABLE_TLS13_COMPAT_MODE:%SERVER_PRECEDENCE:NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"
            + "+CHACHA20-POLY1305:+AES-128-CCM:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1"
        raw = gnutls_priority_init(&p, s, nil) == 0 ? p : nil
    }
}

/// Owns one GnuTLS server session attached to a QUIC connection, and the `conn_ref` through
/// which ngtcp2's GnuTLS glue finds the `ngtcp2_conn` (ngtcp2_crypto.h:858-887). Both are
/// freed in `deinit`, after the connection stopped using them.
final class QUICTLSSession {
    let raw: gnutls_session_t
    let connRef: UnsafeMutablePointer<ngtcp2_crypto_conn_ref>
    /// Keeps the certificates alive while the session may use them.
    let credentials: QUICTLSCredentials

    /// Keeps the session ticket key alive while the session may use it.
    let ticketKey: QUICTicketKey

    /// Keeps the anti-replay table alive while the session may use it (nil: no 0-RTT).
    let antiReplay: QUICAntiReplay?

    /// The server's client-auth policies, and the local address for handshakes without SNI.
    let clientAuth: (any QUICClientAuthSelector)?
    let localAddress: String?
    /// The policy that applies to this handshake (chosen once the ClientHello is read).
    private(set) var clientAuthPolicy: (any QUICClientAuthPolicy)?

    init(credentials: QUICTLSCredentials, ticketKey: QUICTicketKey, antiReplay: QUICAntiReplay?,
         clientAuth: (any QUICClientAuthSelector)? = nil, localAddress: String? = nil,
         connection: UnsafeMutableRawPointer, getConn: ngtcp2_crypto_get_conn) throws(QUICTLSError) {
        self.clientAuth = clientAuth
        self.localAddress = localAddress
        self.credentials = credentials
        self.ticketKey = ticketKey
        self.antiReplay = antiReplay
        var s: gnutls_session_t? = nil
        var rv = gnutls_init(&s, antiReplay != nil ? berth_gnutls_quic_server_early_flags() : berth_gnutls_quic_server_flags())
        guard rv == 0, let s else { throw QUICTLSError("gnutls_init", rv) }
        raw = s
        connRef = .allocate(capacity: 1)
        connRef.initialize(to: ngtcp2_crypto_conn_ref(get_conn: getConn, user_data: connection))
        if let p = QUICTLSCredentials.priority {
            rv = gnutls_priority_set(s, p)
        } else {
            rv = GNUTLS_E_INVALID_REQUEST
        }
        if rv != 0 { throw QUICTLSError("gnutls_priority_set", rv) }
        gnutls_handshake_set_hook_function(
            s, UInt32(GNUTLS_HANDSHAKE_CLIENT_HELLO.rawValue), GNUTLS_HOOK_POST, quicALPNHook)
        if clientAuth != nil {
            gnutls_handshake_set_post_client_hello_function(s, quicClientHelloHook)
        }
        rv = ngtcp2_crypto_gnutls_configure_server_session(s)
        if rv != 0 { throw QUICTLSError("ngtcp2_crypto_gnutls_configure_server_session", rv) }
        gnutls_session_set_ptr(s, connRef)
        rv = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, UnsafeMutableRawPointer(credentials.raw))
        if rv != 0 { throw QUICTLSError("gnutls_credentials_set", rv) }
        // Session resumption (RFC 8446 §2.2): a ticket is sent once the handshake completes
        // (`sendSessionTicket`).
        rv = gnutls_session_ticket_enable_server(s, ticketKey.datum)
        if rv != 0 { throw QUICTLSError("gnutls_session_ticket_enable_server", rv) }
        if let antiReplay {
            // 0-RTT (QUICEarlyData.swift): tickets allow early data, with QUIC's
            // max_early_data_size of 0xffffffff (RFC 9001 §4.6.1), under anti-replay.
            gnutls_anti_replay_enable(s, antiReplay.raw)
            rv = gnutls_record_set_max_early_data_size(s, 0xffff_ffff)
            if rv != 0 { throw QUICTLSError("gnutls_record_set_max_early_data_size", rv) }
        }
        // RFC 9114 §3.1: ALPN "h3"; RFC 9001 §8.1: no ALPN, no connection.
        let h3: StaticString = "h3"
        var proto = gnutls_datum_t(data: UnsafeMutablePointer(mutating: h3.utf8Start), size: 2)
        rv = gnutls_alpn_set_protocols(s, &proto, 1, berth_gnutls_alpn_server_flags())
        if rv != 0 { throw QUICTLSError("gnutls_alpn_set_protocols", rv) }
    }

    deinit {
        gnutls_deinit(raw)
        connRef.deinitialize(count: 1)
        connRef.deallocate()
    }

    /// The session of a GnuTLS handle (its pointer is the conn_ref whose user data is the
    /// connection).
    static func from(_ session: gnutls_session_t) -> QUICTLSSession? {
        guard let p = gnutls_session_get_ptr(session) else { return nil }
        let ref = p.assumingMemoryBound(to: ngtcp2_crypto_conn_ref.self)
        guard let ud = ref.pointee.user_data else { return nil }
        return Unmanaged<QUICConnection>.fromOpaque(ud).takeUnretainedValue().tls
    }

    /// From the post-ClientHello hook: picks the policy for the SNI and asks for (or
    /// requires) a certificate, which the policy then verifies.
    func selectClientAuthPolicy() {
        guard let clientAuth else { return }
        let sni = serverName
        guard let policy = clientAuth.clientAuthPolicy(serverName: sni, localAddress: sni == nil ? localAddress : nil)
        else { return }
        clientAuthPolicy = policy
        gnutls_certificate_server_set_request(raw, policy.requiresCertificate ? GNUTLS_CERT_REQUIRE : GNUTLS_CERT_REQUEST)
        gnutls_session_set_verify_function(raw, quicVerifyClientCertificate)
    }

    /// The client's certificate chain (DER, leaf first): what it sent in this handshake, or
    /// what the resumed session recorded.
    var peerChain: [[UInt8]] {
        var n: UInt32 = 0
        guard let list = gnutls_certificate_get_peers(raw, &n), n > 0 else { return [] }
        var out: [[UInt8]] = []
        out.reserveCapacity(Int(n))
        for i in 0..<Int(n) {
            guard let d = list[i].data else { continue }
            out.append(Array(UnsafeBufferPointer(start: d, count: Int(list[i].size))))
        }
        return out
    }

    /// Sends one NewSessionTicket (the session is created with GNUTLS_NO_AUTO_SEND_TICKET so
    /// that it goes out only after the QUIC handshake completed, in 1-RTT CRYPTO frames).
    func sendSessionTicket() {
        _ = gnutls_session_ticket_send(raw, 1, 0)
    }

    /// Whether this session was resumed from a ticket.
    var resumed: Bool { gnutls_session_is_resumed(raw) != 0 }

    /// The SNI the client sent, if any.
    var serverName: String? {
        var buf = [UInt8](repeating: 0, count: 256)
        var len = buf.count
        var type: UInt32 = 0
        let rv = gnutls_server_name_get(raw, &buf, &len, &type, 0)
        guard rv == 0, len > 0 else { return nil }
        return String(decoding: buf[0..<min(len, buf.count)].prefix { $0 != 0 }, as: UTF8.self)
    }

    /// The IANA value of the negotiated TLS 1.3 cipher suite (RFC 8446 §B.4).
    var cipherSuite: UInt16 {
        switch gnutls_cipher_get(raw) {
        case GNUTLS_CIPHER_AES_128_GCM: return 0x1301
        case GNUTLS_CIPHER_AES_256_GCM: return 0x1302
        case GNUTLS_CIPHER_CHACHA20_POLY1305: return 0x1303
        case GNUTLS_CIPHER_AES_128_CCM: return 0x1304
        default: return 0
        }
    }
}

/// After the ClientHello: the connection goes on only when ALPN selected "h3".
private let quicALPNHook: gnutls_handshake_hook_func = { session, _, _, _, _ in
    var d = gnutls_datum_t()
    guard gnutls_alpn_get_selected_protocol(session, &d) == 0, d.size == 2, let p = d.data,
        p[0] == UInt8(ascii: "h"), p[1] == UInt8(ascii: "3")
    else { return -1 }
    return 0
}

/// A TLS protocol version, with the wire value Caddy logs as `tls.version` (772 for TLS 1.3).
package enum TLSVersion: UInt16, Sendable, Comparable, CustomStringConvertible {
    /// TLS 1.0 (RFC 2246): only a client in tests may offer it.
    case tls10 = 0x0301
    /// TLS 1.1 (RFC 4346): only a client in tests may offer it.
    case tls11 = 0x0302
    /// TLS 1.2 (RFC 5246).
    case tls12 = 0x0303
    /// TLS 1.3 (RFC 8446).
    case tls13 = 0x0304

    package static func < (a: TLSVersion, b: TLSVersion) -> Bool { a.rawValue < b.rawValue }

    /// `"TLS 1.3"`.
    package var description: String {
        switch self {
        case .tls10: "TLS 1.0"
        case .tls11: "TLS 1.1"
        case .tls12: "TLS 1.2"
        case .tls13: "TLS 1.3"
        }
    }

    /// OpenSSL's `*_VERSION` constant.
    var openSSL: Int32 { Int32(rawValue) }
}

/// An ALPN protocol name (RFC 7301 §3.1: 1–255 opaque bytes; IANA registry names).
package struct ApplicationProtocol: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The protocol name as sent on the wire.
    package let name: String

    /// `h2`: HTTP/2 over TLS (RFC 9113 §3.2).
    package static let h2: ApplicationProtocol = "h2"
    /// `http/1.1` (RFC 7301 §6).
    package static let http11: ApplicationProtocol = "http/1.1"
    /// `acme-tls/1`: the ACME TLS-ALPN-01 challenge (RFC 8737 §6.2).
    package static let acmeTLS1: ApplicationProtocol = "acme-tls/1"

    package init(_ name: String) { self.name = name }
    package init(stringLiteral value: String) { self.name = value }

    package var description: String { name }

    /// Length-prefixed wire bytes.
    var wire: [UInt8] { [UInt8(truncatingIfNeeded: name.utf8.count)] + Array(name.utf8) }

    /// RFC 7301 §3.1: empty names and names over 255 bytes are not allowed.
    var isValid: Bool { !name.utf8.isEmpty && name.utf8.count <= 255 }
}

/// Server-side settings for one listener's `TLSContext`.
///
/// The defaults are the policy: TLS 1.2–1.3 only, AEAD suites with forward secrecy only
/// (ECDHE + AES-GCM / ChaCha20-Poly1305 for TLS 1.2; all three RFC 8446 §B.4 suites for
/// TLS 1.3), groups X25519, P-256, P-384, no renegotiation, no compression, server cipher
/// preference (ChaCha20 first only for clients that put it first), stateless session tickets.
package struct TLSServerConfiguration: Sendable {
    /// The certificates to serve, selected per SNI; shared and hot-swappable.
    package var certificates: CertificateSource
    /// ALPN protocols in server preference order (Caddy's default: `h2`, `http/1.1`).
    /// `acme-tls/1` need not be listed: it is offered when `acmeChallengeCertificates` is set.
    package var applicationProtocols: [ApplicationProtocol] = [.h2, .http11]
    /// Lowest version accepted; must be TLS 1.2 or later.
    package var minimumVersion: TLSVersion = .tls12
    /// Highest version accepted.
    package var maximumVersion: TLSVersion = .tls13
    /// Session-ticket keys (shared across listeners and reloads so tickets survive both);
    /// nil disables tickets and therefore resumption.
    package var ticketKeys: TicketKeyRing?
    /// TLS 1.3 NewSessionTicket messages sent after each full handshake (RFC 8446 §4.6.1).
    package var ticketsPerHandshake: Int = 2
    /// Challenge certificates for ACME TLS-ALPN-01 (RFC 8737), looked up by exact SNI when
    /// the client offers only `acme-tls/1`. Nil: `acme-tls/1` is never negotiated.
    package var acmeChallengeCertificates: CertificateSource?
    /// Client authentication per SNI (`tls { client_auth }`), first match wins; handshakes no
    /// policy matches are not asked for a certificate.
    package var clientAuthPolicies: [TLSClientAuthPolicy] = []
    /// TLS 1.2 suites (OpenSSL names, from `tls { ciphers }`); nil: `tls12CipherList`.
    /// TLS 1.3 suites are fixed, as in Go. An empty string leaves TLS 1.2 without suites.
    package var tls12Ciphers: String?
    /// Key-exchange groups (OpenSSL names, from `tls { curves }`); nil: `groups`.
    package var keyExchangeGroups: String?

    /// Frees each connection's record buffers (~34 KiB: 16 KiB records plus overhead, one for
    /// reading and one for writing) whenever they are empty (`SSL_MODE_RELEASE_BUFFERS`, as
    /// nginx does). Saves memory with many idle keep-alive connections, at the price of a
    /// malloc/free pair per read or write burst. Off: steady-state traffic allocates nothing.
    package var releaseIdleBuffers = false

    package init(certificates: CertificateSource, ticketKeys: TicketKeyRing? = TicketKeyRing()) {
        self.certificates = certificates
        self.ticketKeys = ticketKeys
    }

    /// TLS 1.2 suites (OpenSSL names), in preference order; all ECDHE (forward secrecy) and
    /// AEAD (RFC 5288, RFC 7905). No CBC, no RSA key exchange, no SHA-1 MACs.
    package static let tls12CipherList =
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
        + "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
        + "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
    /// TLS 1.3 suites (RFC 8446 §B.4), in preference order.
    package static let tls13CipherSuites = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"
    /// Key-exchange groups (RFC 8446 §4.2.7, RFC 8422 §5.1.1).
    package static let groups = "X25519:P-256:P-384"
}

/// Which certificates a client trusts.
package enum TLSTrustRoots: Sendable {
    /// The system store (`SSL_CTX_set_default_verify_paths`).
    case system
    /// PEM certificates in memory (e.g. the local CA's root).
    case pem([UInt8])
    /// A PEM bundle file.
    case file(String)
    /// No verification at all (tests; `tls_insecure_skip_verify`).
    case insecureNoVerification
}

/// Client-side settings (tests, and later `reverse_proxy` to https upstreams).
package struct TLSClientConfiguration: Sendable {
    /// Trust anchors and whether to verify.
    package var trustRoots: TLSTrustRoots = .system
    /// ALPN protocols to offer, in preference order; empty sends no ALPN extension.
    package var applicationProtocols: [ApplicationProtocol] = []
    /// Lowest version offered.
    package var minimumVersion: TLSVersion = .tls12
    /// Highest version offered.
    package var maximumVersion: TLSVersion = .tls13
    /// OpenSSL cipher list for TLS ≤ 1.2; nil keeps OpenSSL's default. Tests use this to offer
    /// suites the server must refuse (e.g. `"AES128-SHA"`).
    package var cipherList: String?
    /// TLS 1.3 suites; nil keeps OpenSSL's default.
    package var cipherSuites: String?
    /// Key-exchange groups in preference order (the first gets a key share); nil keeps
    /// OpenSSL's default.
    package var groups: String?
    /// OpenSSL security level; nil keeps the default. OpenSSL 3 refuses to even offer
    /// TLS 1.0/1.1 above level 0.
    package var securityLevel: Int?
    /// Sends the client's own certificate chain when the server asks for one.
    package var certificate: TLSCertificate?

    package init(trustRoots: TLSTrustRoots = .system, applicationProtocols: [ApplicationProtocol] = []) {
        self.trustRoots = trustRoots
        self.applicationProtocols = applicationProtocols
    }
}

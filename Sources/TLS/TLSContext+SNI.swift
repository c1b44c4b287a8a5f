internal import COpenSSL

#if canImport(Glibc)
import Glibc
#endif

// Server-side callbacks that pick the certificate (SNI, RFC 6066 §3) and the application
// protocol (ALPN, RFC 7301 §3.2), plus the ACME TLS-ALPN-01 hook (RFC 8737 §3).
//
// Order inside OpenSSL's ClientHello processing: client_hello_cb (only registered when ACME
// challenges are configured) → servername_cb (certificate) → alpn_select_cb. Every trampoline
// checks its pointers and answers with a fatal alert rather than crash.

/// `SSL_CTX_set_tlsext_servername_callback`: installs the certificate for the requested name.
/// OpenSSL calls it for every ClientHello, with or without the extension.
let serverNameCallback:
    @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int32>?, UnsafeMutableRawPointer?) -> Int32 = {
        ssl, alert, arg in
        guard let ssl, let arg else { return SSL_TLSEXT_ERR_ALERT_FATAL }
        let context = Unmanaged<TLSContext>.fromOpaque(arg).takeUnretainedValue()
        let connection = TLSConnection.from(ssl)
        if context.selectCertificate(ssl, connection) { return SSL_TLSEXT_ERR_OK }
        alert?.pointee = SSL_AD_INTERNAL_ERROR  // what Caddy sends when it has no certificate
        return SSL_TLSEXT_ERR_ALERT_FATAL
    }

/// `SSL_CTX_set_alpn_select_cb`: picks the protocol from the client's list.
let alpnSelectCallback:
    @convention(c) (
        OpaquePointer?, UnsafeMutablePointer<UnsafePointer<UInt8>?>?, UnsafeMutablePointer<UInt8>?,
        UnsafePointer<UInt8>?, UInt32, UnsafeMutableRawPointer?
    ) -> Int32 = { ssl, out, outlen, input, inlen, arg in
        guard let ssl, let out, let outlen, let input, let arg else { return SSL_TLSEXT_ERR_ALERT_FATAL }
        let context = Unmanaged<TLSContext>.fromOpaque(arg).takeUnretainedValue()
        let offered = UnsafeBufferPointer(start: input, count: Int(inlen))
        let challenge = TLSConnection.from(ssl)?.servingACMEChallenge ?? false
        switch context.selectProtocol(offered: offered, acmeChallenge: challenge) {
        case .selected(let offset, let length):
            out.pointee = input + offset
            outlen.pointee = UInt8(length)
            return SSL_TLSEXT_ERR_OK
        case .none:
            return SSL_TLSEXT_ERR_NOACK
        case .refuse:
            return SSL_TLSEXT_ERR_ALERT_FATAL  // OpenSSL sends no_application_protocol (120)
        }
    }

/// `SSL_CTX_set_client_hello_cb`, before any extension is processed: notes whether the client
/// offers only `acme-tls/1`, so the servername callback can present the challenge certificate
/// (RFC 8737 §3), and applies the client-auth policy for the requested name — here rather than
/// in the servername callback because the session-ID context must be set before OpenSSL checks
/// a resumption ticket against it.
let clientHelloCallback:
    @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int32>?, UnsafeMutableRawPointer?) -> Int32 = {
        ssl, _, arg in
        guard let ssl, let connection = TLSConnection.from(ssl) else { return SSL_CLIENT_HELLO_SUCCESS }
        var data: UnsafePointer<UInt8>?
        var len = 0
        guard let arg else { return SSL_CLIENT_HELLO_SUCCESS }
        let context = Unmanaged<TLSContext>.fromOpaque(arg).takeUnretainedValue()
        if !context.clientAuthPolicies.isEmpty {
            var name: String?
            if SSL_client_hello_get0_ext(ssl, UInt32(TLSEXT_TYPE_server_name), &data, &len) == 1, let data {
                name = ServerNameExtension.hostName(UnsafeBufferPointer(start: data, count: len))
            }
            let local = name == nil ? connection.localAddress : nil
            if let policy = context.clientAuthPolicies.first(where: { $0.matches(serverName: name, localAddress: local) }) {
                connection.clientAuthPolicy = policy
                policy.apply(to: ssl)
            }
        }
        guard context.acmeChallengeCertificates != nil,
            SSL_client_hello_get0_ext(ssl, UInt32(TLSEXT_TYPE_application_layer_protocol_negotiation), &data, &len)
                == 1,
            let data
        else { return SSL_CLIENT_HELLO_SUCCESS }
        let ext = UnsafeBufferPointer(start: data, count: len)
        var names = 0
        var onlyACME = false
        ALPNWire.forEach(inExtension: ext) { name in
            names += 1
            onlyACME = ALPNWire.equals(name, ApplicationProtocol.acmeTLS1.name)
        }
        connection.acmeChallengeRequested = names == 1 && onlyACME
        return SSL_CLIENT_HELLO_SUCCESS
    }

/// The server_name extension body (RFC 6066 §3): `ServerName server_name_list<1..2^16-1>`,
/// each `NameType name_type; opaque HostName<1..2^16-1>`.
enum ServerNameExtension {
    /// The first host_name (type 0), lower-cased; nil when absent or malformed.
    static func hostName(_ ext: UnsafeBufferPointer<UInt8>) -> String? {
        guard ext.count >= 2 else { return nil }
        let total = Int(ext[0]) << 8 | Int(ext[1])
        guard total + 2 <= ext.count else { return nil }
        var i = 2
        while i + 3 <= 2 + total {
            let type = ext[i]
            let n = Int(ext[i + 1]) << 8 | Int(ext[i + 2])
            guard i + 3 + n <= 2 + total else { return nil }
            if type == 0, n > 0 {
                return String(decoding: UnsafeBufferPointer(rebasing: ext[(i + 3)..<(i + 3 + n)]), as: UTF8.self).lowercased()
            }
            i += 3 + n
        }
        return nil
    }
}

/// Outcome of ALPN selection.
enum ALPNSelection: Equatable {
    /// Use the name at `offset` (after its length byte) in the client's list.
    case selected(offset: Int, length: Int)
    /// Continue without ALPN.
    case none
    /// Abort with no_application_protocol.
    case refuse
}

/// Walking ALPN protocol name lists (RFC 7301 §3.1: `opaque ProtocolName<1..2^8-1>`).
enum ALPNWire {
    /// Calls `body` for each name in a length-prefixed list; stops at a malformed entry.
    /// Returns false when the list is malformed.
    @discardableResult
    static func forEach(_ list: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) -> Bool {
        var i = 0
        while i < list.count {
            let n = Int(list[i])
            guard n > 0, i + 1 + n <= list.count else { return false }
            body(UnsafeBufferPointer(rebasing: list[(i + 1)..<(i + 1 + n)]))
            i += 1 + n
        }
        return true
    }

    /// Same for the raw extension body, which starts with a 2-byte list length.
    static func forEach(inExtension ext: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Void) {
        guard ext.count >= 2 else { return }
        let n = Int(ext[0]) << 8 | Int(ext[1])
        guard n + 2 <= ext.count else { return }
        forEach(UnsafeBufferPointer(rebasing: ext[2..<(2 + n)]), body)
    }

    static func equals(_ a: UnsafeBufferPointer<UInt8>, _ b: String) -> Bool {
        a.elementsEqual(b.utf8)
    }

    static func equals(_ a: UnsafeBufferPointer<UInt8>, _ b: [UInt8]) -> Bool {
        a.elementsEqual(b)
    }
}

extension TLSContext {
    /// Chooses and installs the certificate for this handshake. False: none available.
    func selectCertificate(_ ssl: OpaquePointer, _ connection: TLSConnection?) -> Bool {
        let name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name).map { String(cString: $0) }
        var certificate: TLSCertificate?
        if let connection, connection.acmeChallengeRequested {
            // RFC 8737 §3: the challenge certificate for exactly this name, or nothing.
            if let name, let c = acmeChallengeCertificates?.current.match(name) {
                certificate = c
                connection.servingACMEChallenge = true
            } else {
                return false
            }
        } else {
            // The local address (a getsockname) only matters without SNI.
            let local = name == nil ? connection?.localAddress : nil
            certificate = certificates?.current.certificate(forServerName: name, localAddress: local)
        }
        guard let certificate else { return false }
        return SSL_use_cert_and_key(ssl, certificate.leaf, certificate.key, certificate.chain, 1) == 1
    }

    /// Server-preference ALPN selection (RFC 7301 §3.2), as Go's crypto/tls does it: the
    /// first protocol of ours that the client offers; with no overlap, a client offering
    /// `http/1.1` to an `h2` server continues without ALPN, anything else is refused.
    func selectProtocol(offered: UnsafeBufferPointer<UInt8>, acmeChallenge: Bool) -> ALPNSelection {
        if acmeChallenge {
            return Self.find(Array(ApplicationProtocol.acmeTLS1.name.utf8), in: offered).map {
                .selected(offset: $0, length: ApplicationProtocol.acmeTLS1.name.utf8.count)
            } ?? .refuse
        }
        for proto in alpnWire {
            if let off = Self.find(proto, in: offered) { return .selected(offset: off, length: proto.count) }
        }
        if alpnWire.isEmpty { return .none }
        if offersH2, Self.find(Array(ApplicationProtocol.http11.name.utf8), in: offered) != nil { return .none }
        return .refuse
    }

    /// Offset of `name`'s bytes inside a length-prefixed list, or nil.
    private static func find(_ name: [UInt8], in list: UnsafeBufferPointer<UInt8>) -> Int? {
        var i = 0
        while i < list.count {
            let n = Int(list[i])
            guard n > 0, i + 1 + n <= list.count else { return nil }
            if n == name.count,
                ALPNWire.equals(UnsafeBufferPointer(rebasing: list[(i + 1)..<(i + 1 + n)]), name)
            {
                return i + 1
            }
            i += 1 + n
        }
        return nil
    }
}

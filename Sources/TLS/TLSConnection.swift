internal import COpenSSL
import IOCore

#if canImport(Glibc)
import Glibc
#endif

/// `SSL` ex_data slot holding an unretained `TLSConnection`.
let connectionExDataIndex: Int32 = berth_ssl_get_ex_new_index()

/// What one `feed` call observed besides the plaintext it produced.
package struct TLSFeedResult: Sendable, Equatable {
    /// The handshake finished during this call: read `info` (ALPN!) before handing plaintext
    /// to a protocol. Plaintext may already follow in the same call.
    package var handshakeCompleted = false
    /// The peer sent close_notify (RFC 8446 §6.1): no more plaintext will arrive. Answer with
    /// `shutdown()`, flush, close.
    package var closeNotifyReceived = false

    package init(handshakeCompleted: Bool = false, closeNotifyReceived: Bool = false) {
        self.handshakeCompleted = handshakeCompleted
        self.closeNotifyReceived = closeNotifyReceived
    }
}

/// Negotiated parameters, fixed at the end of the handshake. Field names follow the access
/// log's `request.tls` object (Caddy: `resumed`, `version`, `cipher_suite`, `proto`,
/// `server_name`), and the numbers are the ones Go logs (IANA code points).
package struct TLSConnectionInfo: Sendable, Equatable {
    /// `resumed`: the handshake resumed a session (ticket / PSK).
    package var resumed: Bool
    /// `version`: 771 for TLS 1.2, 772 for TLS 1.3.
    package var version: UInt16
    /// `cipher_suite`: IANA code point, e.g. 4865 (0x1301, TLS_AES_128_GCM_SHA256).
    package var cipherSuite: UInt16
    /// The suite's IANA name, e.g. `TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`.
    package var cipherSuiteName: String
    /// `proto`: the ALPN protocol, nil when none was negotiated (log it as `""`).
    package var applicationProtocol: String?
    /// `server_name`: the SNI the client sent (server) or requested (client), nil when none.
    package var serverName: String?
    /// Server with a client-auth policy: the client's leaf certificate, if it sent one.
    package var clientCertificate: TLSClientCertificateFacts? = nil

    /// The version as an enum (nil for anything unexpected).
    package var protocolVersion: TLSVersion? { TLSVersion(rawValue: version) }
}

/// Answers a server connection's local IP when a handshake without SNI needs it.
package protocol TLSLocalAddressSource: AnyObject {
    func tlsLocalAddress() -> String?
}

/// A resumable client session (`SSL_SESSION`), for the next connection to the same server.
package final class TLSSession: @unchecked Sendable {
    let raw: OpaquePointer

    /// Takes ownership of one reference.
    init(owned raw: OpaquePointer) { self.raw = raw }
    deinit { SSL_SESSION_free(raw) }

    /// True when it can be offered for resumption (TLS 1.3: a ticket arrived).
    package var isResumable: Bool { SSL_SESSION_is_resumable(raw) == 1 }
}

/// One TLS connection, sans-I/O (owns one `SSL`): ciphertext in `input` (what the socket
/// read), ciphertext out to `output` (what the socket must write), plaintext through the
/// buffers the caller passes to `feed` and `write`.
///
/// A connection lives on one event-loop thread. Every call clears OpenSSL's error queue first
/// and drains it into the thrown `TLSError`. After an error, `output` may hold an alert:
/// flush it, then close the socket.
package final class TLSConnection {
    /// Lifecycle.
    package enum State: Sendable, Equatable {
        case handshaking
        case established
        /// A fatal error or alert; only `output` (an alert) is still worth flushing.
        case failed
    }

    /// The context; kept alive by the connection (OpenSSL's callbacks reach it unretained).
    package let context: TLSContext
    /// Ciphertext received from the peer; `feed` consumes it.
    package let input: ByteBuffer
    /// Ciphertext to send to the peer; every call may append to it.
    package let output: ByteBuffer
    /// Server: the local IP of the socket, tried against IP SANs when there is no SNI. Given
    /// at creation, or asked of `localAddressSource` only when a handshake needs it (a
    /// getsockname per connection otherwise, for the rare client without SNI).
    package var localAddress: String? { fixedLocalAddress ?? localAddressSource?.tlsLocalAddress() }
    private let fixedLocalAddress: String?
    /// Server: resolves `localAddress` lazily; the owner (which owns this connection) must
    /// outlive it.
    package unowned(unsafe) var localAddressSource: (any TLSLocalAddressSource)?
    /// Client: the name sent as SNI and verified (or the IP verified).
    package let serverName: String?
    /// Where the connection is.
    package private(set) var state: State = .handshaking
    /// Set when the handshake completes.
    package private(set) var info: TLSConnectionInfo?
    /// The peer's close_notify arrived.
    package private(set) var receivedCloseNotify = false
    /// Our close_notify was written to `output`.
    package private(set) var sentCloseNotify = false

    /// `SSL *`.
    let ssl: OpaquePointer
    /// Server: the client offered only `acme-tls/1` (client_hello callback).
    var acmeChallengeRequested = false
    /// Server: a TLS-ALPN-01 challenge certificate is being served.
    var servingACMEChallenge = false
    /// Client: the newest session from the new-session callback.
    var latestSession: TLSSession?
    /// Server: the client-auth policy chosen for this handshake (client_hello callback).
    var clientAuthPolicy: TLSClientAuthPolicy?
    /// Server: the first 5 bytes have been checked for a plaintext HTTP request.
    private var checkedFirstRecord = false

    /// A server connection on `context`. `localAddress` (the socket's local IP) lets a
    /// client that sends no SNI, e.g. `https://127.0.0.1/`, get the certificate for that IP.
    package convenience init(
        server context: TLSContext, input: ByteBuffer, output: ByteBuffer,
        localAddress: String? = nil
    ) throws(TLSError) {
        guard context.role == .server else {
            throw TLSError(.configuration, "client context used for a server connection")
        }
        try self.init(context: context, input: input, output: output, localAddress: localAddress, serverName: nil)
        SSL_set_accept_state(ssl)
    }

    /// A client connection. `serverName` is sent as SNI (unless it is an IP literal,
    /// RFC 6066 §3) and checked against the certificate when the context verifies peers.
    /// `session` resumes an earlier connection's session.
    package convenience init(
        client context: TLSContext, input: ByteBuffer, output: ByteBuffer,
        serverName: String?, session: TLSSession? = nil
    ) throws(TLSError) {
        guard context.role == .client else {
            throw TLSError(.configuration, "server context used for a client connection")
        }
        try self.init(context: context, input: input, output: output, localAddress: nil, serverName: serverName)
        OpenSSLErrorQueue.clear()
        if let name = serverName, !name.isEmpty {
            let ip = IPAddress.canonical(name)
            if ip == nil, berth_ssl_set_tlsext_host_name(ssl, name) != 1 {
                throw TLSError.drain(.configuration, "SNI \(name)")
            }
            if context.verifiesPeer {
                let ok: Bool
                if let ip {
                    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip) == 1
                } else {
                    ok = SSL_set1_host(ssl, name) == 1
                }
                if !ok { throw TLSError.drain(.configuration, "verify name \(name)") }
            }
        }
        if let session, SSL_set_session(ssl, session.raw) != 1 {
            throw TLSError.drain(.configuration, "SSL_set_session")
        }
        SSL_set_connect_state(ssl)
    }

    private init(
        context: TLSContext, input: ByteBuffer, output: ByteBuffer, localAddress: String?,
        serverName: String?
    ) throws(TLSError) {
        precondition(input !== output, "input and output must be different buffers")
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(context.raw) else { throw TLSError.drain(.configuration, "SSL_new") }
        self.ssl = ssl
        self.context = context
        self.input = input
        self.output = output
        self.fixedLocalAddress = localAddress
        self.serverName = serverName
        _ = SSL_set_ex_data(ssl, connectionExDataIndex, Unmanaged.passUnretained(self).toOpaque())
        guard let bio = ByteBufferBIO.make(for: self) else { throw TLSError.drain(.configuration, "BIO_new") }
        SSL_set_bio(ssl, bio, bio)  // one reference, owned by the SSL from here
    }

    deinit {
        // SSL_free treats an established connection that never sent close_notify as "bad" and
        // marks its session not resumable (ssl_clear_bad_session, an RFC 2246-era rule), which
        // would poison the TLSSession a client kept. Dropping a healthy connection (idle
        // timeout, pool eviction) is normal, so mark it shut down first. Sessions of failed
        // connections were already invalidated by OpenSSL's fatal-alert path.
        if state == .established { SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN) }
        SSL_free(ssl)
    }

    /// The connection stored in an `SSL`'s ex_data.
    static func from(_ ssl: OpaquePointer) -> TLSConnection? {
        guard let p = SSL_get_ex_data(ssl, connectionExDataIndex) else { return nil }
        return Unmanaged<TLSConnection>.fromOpaque(p).takeUnretainedValue()
    }

    /// True once the handshake has completed (and the connection has not failed).
    package var isEstablished: Bool { state == .established }

    /// The negotiated ALPN protocol (after the handshake).
    package var applicationProtocol: ApplicationProtocol? {
        info?.applicationProtocol.map { ApplicationProtocol($0) }
    }

    /// The last `feed` stopped at its `limit` with records still to decrypt (inside OpenSSL or
    /// in `input`): call `feed` again once the consumer has drained the plaintext buffer, even
    /// if the socket has nothing new. False whenever `feed` stopped because input ran dry.
    package private(set) var hasPendingPlaintext = false

    // MARK: Handshake

    /// Client: writes the ClientHello into `output`. (Servers just `feed`.)
    package func startHandshake() throws(TLSError) {
        guard state == .handshaking else { return }
        _ = try driveHandshake()
    }

    /// Advances the handshake with whatever is in `input`. True when it just completed.
    private func driveHandshake() throws(TLSError) -> Bool {
        OpenSSLErrorQueue.clear()
        let r = SSL_do_handshake(ssl)
        if r == 1 {
            state = .established
            info = makeInfo()
            return true
        }
        let err = SSL_get_error(ssl, r)
        if err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE { return false }
        throw fail(.handshake, "TLS handshake", code: err)
    }

    // MARK: Data

    /// Consumes ciphertext from `input`: advances the handshake, then decrypts application
    /// data onto `plaintext` until `input` runs dry, close_notify arrives, or `plaintext`
    /// holds at least `limit` readable bytes (backpressure; see `hasPendingPlaintext`).
    /// Handshake messages and alerts produced on the way are appended to `output`.
    @discardableResult
    package func feed(into plaintext: ByteBuffer, limit: Int = Int.max) throws(TLSError) -> TLSFeedResult {
        var result = TLSFeedResult()
        hasPendingPlaintext = false
        switch state {
        case .failed:
            throw TLSError(.closed, "connection already failed")
        case .handshaking:
            if context.role == .server, !checkedFirstRecord {
                guard input.readableBytes >= 5 else { return result }
                checkedFirstRecord = true
                try rejectPlaintextHTTP()
            }
            guard try driveHandshake() else { return result }
            result.handshakeCompleted = true
        case .established:
            break
        }
        if receivedCloseNotify { return result }
        while plaintext.readableBytes < limit {
            plaintext.reserveWritable(4096)
            let room = min(plaintext.writableBytes, limit &- plaintext.readableBytes)
            var n = 0
            OpenSSLErrorQueue.clear()
            if SSL_read_ex(ssl, plaintext.writePointer, room, &n) == 1 {
                plaintext.commit(n)
                continue
            }
            let err = SSL_get_error(ssl, 0)
            switch err {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                return result
            case SSL_ERROR_ZERO_RETURN:
                receivedCloseNotify = true
                result.closeNotifyReceived = true
                return result
            default:
                throw fail(.protocolViolation, "TLS read", code: err)
            }
        }
        hasPendingPlaintext = SSL_has_pending(ssl) == 1 || !input.isEmpty
        return result
    }

    /// Encrypts `bytes` onto `output` (as many records as needed, up to 16 KiB each,
    /// RFC 8446 §5.1). Only after the handshake.
    package func write(_ bytes: UnsafeRawBufferPointer) throws(TLSError) {
        guard state == .established else {
            throw TLSError(
                state == .failed ? .closed : .protocolViolation,
                state == .failed ? "connection already failed" : "write before the handshake completed")
        }
        guard !sentCloseNotify else { throw TLSError(.closed, "write after close_notify") }
        guard var p = bytes.baseAddress, bytes.count > 0 else { return }
        var left = bytes.count
        while left > 0 {
            var n = 0
            OpenSSLErrorQueue.clear()
            guard SSL_write_ex(ssl, p, left, &n) == 1 else {
                throw fail(.protocolViolation, "TLS write", code: SSL_get_error(ssl, 0))
            }
            p += n
            left -= n
        }
    }

    /// Encrypts and consumes everything readable in `plaintext`.
    package func write(from plaintext: ByteBuffer) throws(TLSError) {
        try write(plaintext.readable)
        plaintext.consume(plaintext.readableBytes)
    }

    /// Encrypts `bytes`.
    package func write(_ bytes: [UInt8]) throws(TLSError) {
        var failure: TLSError?
        bytes.withUnsafeBytes { raw in
            do throws(TLSError) { try write(raw) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Writes close_notify to `output` (RFC 8446 §6.1, RFC 5246 §7.2.1) once. Returns true
    /// when the peer's close_notify has also been received. Before the handshake completes
    /// there is nothing to close cleanly and nothing is written.
    @discardableResult
    package func shutdown() -> Bool {
        guard state == .established else { return false }
        if !sentCloseNotify {
            OpenSSLErrorQueue.clear()
            let r = SSL_shutdown(ssl)
            sentCloseNotify = true
            OpenSSLErrorQueue.clear()
            return r == 1 || receivedCloseNotify
        }
        return receivedCloseNotify
    }

    // MARK: Results

    /// Client: the session to resume the next connection with (newest ticket first); nil
    /// after a failure (RFC 5246 §7.2.2: never resume a connection that ended in a fatal alert).
    package var session: TLSSession? {
        guard state != .failed else { return nil }
        if let s = latestSession { return s }
        guard let s = SSL_get1_session(ssl) else { return nil }
        return TLSSession(owned: s)
    }

    /// The leaf of the peer's chain, if it sent one.
    package var peerCertificate: TLSPeerCertificate? {
        guard let x = SSL_get1_peer_certificate(ssl) else { return nil }
        defer { X509_free(x) }
        return X509Info(x).peer
    }

    private func makeInfo() -> TLSConnectionInfo {
        let cipher = SSL_get_current_cipher(ssl)
        var alpn: UnsafePointer<UInt8>?
        var alpnLength: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &alpn, &alpnLength)
        var proto: String?
        if let alpn, alpnLength > 0 {
            proto = String(decoding: UnsafeBufferPointer(start: alpn, count: Int(alpnLength)), as: UTF8.self)
        }
        let sni: String?
        if context.role == .server {
            sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name).map { String(cString: $0) }
        } else {
            sni = serverName.flatMap { IPAddress.parse($0) == nil ? $0 : nil }
        }
        var clientCertificate: TLSClientCertificateFacts?
        if clientAuthPolicy != nil, let peer = SSL_get0_peer_certificate(ssl) {
            clientCertificate = TLSClientCertificateFacts(peer)
        }
        return TLSConnectionInfo(
            resumed: SSL_session_reused(ssl) == 1,
            version: UInt16(truncatingIfNeeded: SSL_version(ssl)),
            cipherSuite: cipher.map { SSL_CIPHER_get_protocol_id($0) } ?? 0,
            cipherSuiteName: cipher.flatMap { SSL_CIPHER_standard_name($0) }.map { String(cString: $0) } ?? "",
            applicationProtocol: proto,
            serverName: sni,
            clientCertificate: clientCertificate)
    }

    /// Marks the connection failed and builds the error from the queue.
    private func fail(_ kind: TLSError.Kind, _ what: String, code: Int32) -> TLSError {
        state = .failed
        var e = TLSError.drain(kind, what)
        if context.role == .client, context.verifiesPeer {
            let v = SSL_get_verify_result(ssl)
            if v != X509_V_OK, let s = X509_verify_cert_error_string(v) {
                e.message += " (certificate verification: \(String(cString: s)))"
            }
        }
        if e.errors.isEmpty {
            switch code {
            case SSL_ERROR_SYSCALL: e.message += ": unexpected end of stream"
            case SSL_ERROR_ZERO_RETURN: e.message += ": peer closed"
            default: e.message += ": SSL_get_error \(code)"
            }
        }
        return e
    }

    /// Go's `net/http` answers a plaintext request on a TLS port with a 400 instead of a
    /// garbled alert; Caddy users see this, so do the same (caddy-behavior §6).
    private func rejectPlaintextHTTP() throws(TLSError) {
        let p = input.readable
        let prefixes: [StaticString] = ["GET /", "HEAD ", "POST ", "PUT /", "OPTIO"]
        for s in prefixes where memcmp(p.baseAddress!, s.utf8Start, 5) == 0 {
            output.append("HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
            state = .failed
            throw TLSError(.plaintextHTTP, "client sent an HTTP request to an HTTPS server")
        }
    }
}

/// `SSL_CTX_sess_set_new_cb` (client): keeps the newest session on the connection. Returning
/// 1 keeps the reference OpenSSL handed over.
let newSessionCallback: @convention(c) (OpaquePointer?, OpaquePointer?) -> Int32 = { ssl, session in
    guard let ssl, let session, let connection = TLSConnection.from(ssl) else { return 0 }
    connection.latestSession = TLSSession(owned: session)
    return 1
}

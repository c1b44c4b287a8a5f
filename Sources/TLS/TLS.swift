internal import COpenSSL

// The TLS module: sans-I/O OpenSSL 3 for Berth's listeners (and, later, https upstreams).
//
// Pieces (one C object per final class, freed in deinit):
//   TLSContext      SSL_CTX: versions, suites, groups, ALPN policy, SNI and ticket callbacks.
//   TLSConnection   SSL + a BIO that reads/writes the caller's ByteBuffers directly.
//   TLSCertificate  X509 leaf + STACK_OF(X509) intermediates + EVP_PKEY.
//   CertificateStore / CertificateSource   immutable SNI index / its atomically swapped holder.
//   TicketKeyRing   rotating session-ticket keys shared across contexts and reloads.
//   LocalCA         `tls internal`: root + intermediate on disk, leaves in memory.
//   X509Builder, TLSPrivateKey   certificate construction (local CA, ACME TLS-ALPN-01).
//
// A server's connection driver, per accepted socket (see TLSConnection's documentation):
//
//     let tls = try TLSConnection(server: listener.tlsContext, input: cipherIn, output: cipherOut,
//                                 localAddress: localIP)
//     // readable: socket → cipherIn, then
//     let r = try tls.feed(into: plainIn, limit: 256 << 10)
//     if r.handshakeCompleted { pick HTTP/2 when tls.applicationProtocol == .h2, else HTTP/1 }
//     protocol consumes plainIn, appends to plainOut
//     try tls.write(from: plainOut)          // → cipherOut
//     // writable / after each step: cipherOut → socket
//     // errors: flush cipherOut (it may hold an alert or the plaintext-HTTP 400), then close.

/// Facts about the linked OpenSSL.
package enum OpenSSLLibrary {
    /// `OpenSSL 3.0.x dd Mon yyyy`, for `berth version` and start-up logs.
    package static var version: String {
        OpenSSL_version(OPENSSL_VERSION).map { String(cString: $0) } ?? "OpenSSL"
    }
}

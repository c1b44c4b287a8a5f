internal import CGnuTLS
import HTTPCore

/// One site's client-certificate policy, as QUIC handshakes use it. QUIC's TLS is GnuTLS here
/// while the policies (and the certificate checks, so both stacks decide alike) belong to the
/// TLS module over OpenSSL; the server passes them in behind this protocol. Shared by every
/// loop: implementations must be immutable.
package protocol QUICClientAuthPolicy: AnyObject, Sendable {
    /// Require modes (or trusted leaves): a handshake without a certificate fails.
    var requiresCertificate: Bool { get }
    /// Whether the chain (DER, leaf first; empty when none was sent) is acceptable.
    func accepts(chain: [[UInt8]]) -> Bool
    /// `{http.request.tls.client.*}` facts of the leaf.
    func fields(leaf: [UInt8]) -> ClientCertificateFields?
}

/// Picks the policy for a handshake, by SNI (or, without SNI, the local address).
package protocol QUICClientAuthSelector: AnyObject, Sendable {
    func clientAuthPolicy(serverName: String?, localAddress: String?) -> (any QUICClientAuthPolicy)?
}

/// GnuTLS's post-ClientHello callback (SNI known, certificate request not yet sent): the
/// connection's policy decides whether a certificate is requested or required.
let quicClientHelloHook: @convention(c) (gnutls_session_t?) -> Int32 = { session in
    guard let session, let tls = QUICTLSSession.from(session) else { return 0 }
    tls.selectClientAuthPolicy()
    return 0
}

/// GnuTLS's certificate check for sessions with a policy: the policy verifies the chain.
let quicVerifyClientCertificate: @convention(c) (gnutls_session_t?) -> Int32 = { session in
    guard let session, let tls = QUICTLSSession.from(session), let policy = tls.clientAuthPolicy else {
        return GNUTLS_E_CERTIFICATE_ERROR
    }
    return policy.accepts(chain: tls.peerChain) ? 0 : GNUTLS_E_CERTIFICATE_ERROR
}

#if canImport(Glibc)
import Glibc
#endif
import IOCore
import TLS

/// The challenge responses the running server must give while a validation is in progress,
/// shared between the ACME thread (which adds and removes them) and every event-loop thread
/// (which answers from them). Thread-safe; lookups are a mutex and a dictionary probe, and only
/// requests under `/.well-known/acme-challenge/` or handshakes offering only `acme-tls/1` ever
/// look.
///
/// - HTTP-01 (RFC 8555 §8.3): `GET /.well-known/acme-challenge/<token>` on port 80 answers
///   `200` with the key authorization (`text/plain`, as certmagic sends it). Berth serves it on every
///   listener, inherited fds included, before any site route — it never binds a port.
/// - TLS-ALPN-01 (RFC 8737 §3): a handshake whose ClientHello offers only `acme-tls/1` and
///   names the domain in SNI gets a self-signed certificate for that domain carrying the
///   critical id-pe-acmeIdentifier extension (SHA-256 of the key authorization). The
///   `tlsALPN01` source is what `TLSServerConfiguration.acmeChallengeCertificates` points at.
package final class ACMEChallengeStore: @unchecked Sendable {
    /// The path prefix of HTTP-01 requests (RFC 8555 §8.3).
    package static let http01PathPrefix = "/.well-known/acme-challenge/"
    /// id-pe-acmeIdentifier (RFC 8737 §6.1).
    package static let acmeIdentifierOID = "1.3.6.1.5.5.7.1.31"

    private var mutex = pthread_mutex_t()
    private var http01: [String: (domain: String, keyAuthorization: String)] = [:]
    private var alpnCertificates: [String: TLSCertificate] = [:]

    /// TLS-ALPN-01 certificates by exact domain (hand it to the TLS contexts).
    package let tlsALPN01 = CertificateSource([])

    package init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }

    // MARK: HTTP-01

    /// Starts answering `token` for `domain`.
    package func presentHTTP01(domain: String, token: String, keyAuthorization: String) {
        locked { http01[token] = (domain.lowercased(), keyAuthorization) }
    }

    /// Stops answering `token`.
    package func removeHTTP01(token: String) {
        locked { http01[token] = nil }
    }

    /// The key authorization to send for a request of `path` with Host `host` (port already
    /// stripped), or nil when it is not a challenge Berth is solving. When a host is given it
    /// must be the challenge's domain (as certmagic checks); the validator always sends it.
    package func http01Response(path: String, host: String?) -> String? {
        guard path.hasPrefix(Self.http01PathPrefix) else { return nil }
        let token = String(path.dropFirst(Self.http01PathPrefix.count))
        guard !token.isEmpty else { return nil }
        return locked { () -> String? in
            guard let e = http01[token] else { return nil }
            if let host, !host.isEmpty {
                var h = host.lowercased()
                if h.hasSuffix(".") { h.removeLast() }
                guard h == e.domain else { return nil }
            }
            return e.keyAuthorization
        }
    }

    /// Number of HTTP-01 tokens being answered (tests, status).
    package var http01Count: Int { locked { http01.count } }

    // MARK: TLS-ALPN-01

    /// Starts presenting the TLS-ALPN-01 certificate for `domain` (RFC 8737 §3).
    package func presentTLSALPN01(domain: String, keyAuthorization: String, now: Int = Clock.realtime().seconds)
        throws(ACMEError)
    {
        let cert = try Self.challengeCertificate(domain: domain, keyAuthorization: keyAuthorization, now: now)
        let d = domain.lowercased()
        locked { alpnCertificates[d] = cert }
        tlsALPN01.update { $0.adding(cert) }
    }

    /// Stops presenting the TLS-ALPN-01 certificate for `domain`.
    package func removeTLSALPN01(domain: String) {
        let d = domain.lowercased()
        guard let cert = locked({ () -> TLSCertificate? in
            let c = alpnCertificates[d]
            alpnCertificates[d] = nil
            return c
        }) else { return }
        tlsALPN01.update { $0.removing(cert) }
    }

    /// RFC 8737 §3: self-signed, exactly one dNSName (the domain), and the critical
    /// acmeIdentifier extension whose value is the DER OCTET STRING of
    /// SHA-256(key authorization). ECDSA P-256, valid from a minute ago for a day.
    package static func challengeCertificate(domain: String, keyAuthorization: String, now: Int) throws(ACMEError)
        -> TLSCertificate
    {
        let digest = Digest.sha256(Array(keyAuthorization.utf8))
        var b = X509Builder(commonName: nil, notBefore: now - 60, notAfter: now + 86_400)
        b.dnsNames = [domain.lowercased()]
        b.extendedKeyUsage = "serverAuth"
        b.extraExtensions = [(oid: acmeIdentifierOID, critical: true, der: [0x04, 0x20] + digest)]
        do {
            return try b.sign(key: try TLSPrivateKey.generateECDSA(), issuer: nil)
        } catch {
            throw .crypto("TLS-ALPN-01 certificate for \(domain): \(error)")
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
import HTTP3
import HTTPCore
import IOCore
import TLS

/// Process-wide HTTP/3 state that outlives reloads: the static secret QUIC derives Retry and
/// stateless-reset tokens from, and the GnuTLS credentials built from each certificate
/// snapshot.
enum HTTP3Runtime {
    /// `<data directory>/quic.secret` (`$XDG_DATA_HOME/berth` unless `storage` says otherwise).
    static func secretPath() -> String {
        DataDirectory.root + "/quic.secret"
    }

    nonisolated(unsafe) private static var cachedSecret: [UInt8]?
    private static let lock = Mutex()

    /// The 32-byte static secret: read from `quic.secret`, or created once (mode 0600). A
    /// secret that cannot be stored is still used for this run (tokens then do not survive
    /// a restart), with a warning.
    static func staticSecret() -> [UInt8] {
        lock.lock()
        defer { lock.unlock() }
        if let s = cachedSecret { return s }
        let path = secretPath()
        if let b = try? FileIO.readAll(path, limit: 4096), b.count >= 32 {
            let s = Array(b.prefix(32))
            cachedSecret = s
            return s
        }
        var s = [UInt8](repeating: 0, count: 32)
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            _ = s.withUnsafeMutableBytes { read(fd, $0.baseAddress, 32) }
            close(fd)
        }
        do {
            try makeDirectories(String(path[path.startIndex..<(path.lastIndex(of: "/") ?? path.endIndex)]))
            try FileIO.writeAtomically(path, s, mode: 0o600)
            Log.info("http.quic", "created the QUIC static secret", [("file", .string(path))])
        } catch {
            Log.warn("http.quic", "cannot store the QUIC static secret; stateless resets and Retry tokens will not survive a restart",
                     [("file", .string(path)), ("error", .string("\(error)"))])
        }
        cachedSecret = s
        return s
    }

    private static func makeDirectories(_ dir: String) throws(IOError) {
        var prefix = dir.hasPrefix("/") ? "" : "."
        for part in dir.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o700) != 0, errno != EEXIST { throw IOError("mkdir \(prefix)", errno: errno) }
        }
    }

    /// GnuTLS credentials for a certificate snapshot (cached while the snapshot is current).
    static func credentials(for store: CertificateStore) throws(QUICTLSError) -> QUICTLSCredentials {
        try QUICTLSCredentials(certificates: store.certificates.map { ($0.certificateChainPEM(), $0.privateKeyPEM()) })
    }
}

/// A server's `client_auth` policies for QUIC handshakes: the same `TLSClientAuthPolicy`
/// objects decide as over TCP (OpenSSL verifies the chain GnuTLS received), so h1, h2 and h3
/// accept and reject the same certificates.
final class HTTP3ClientAuth: QUICClientAuthSelector {
    private let policies: [Policy]

    init?(_ policies: [TLSClientAuthPolicy]) {
        if policies.isEmpty { return nil }
        self.policies = policies.map(Policy.init)
    }

    func clientAuthPolicy(serverName: String?, localAddress: String?) -> (any QUICClientAuthPolicy)? {
        policies.first { $0.policy.covers(serverName: serverName, localAddress: localAddress) }
    }

    final class Policy: QUICClientAuthPolicy {
        let policy: TLSClientAuthPolicy
        init(_ policy: TLSClientAuthPolicy) { self.policy = policy }
        var requiresCertificate: Bool { policy.requiresCertificate }
        func accepts(chain: [[UInt8]]) -> Bool { policy.accepts(chain: chain) }
        func fields(leaf: [UInt8]) -> ClientCertificateFields? {
            guard let c = TLSClientAuthPolicy.facts(leaf: leaf) else { return nil }
            return ClientCertificateFields(subject: c.subject, issuer: c.issuer, serial: c.serial,
                                           fingerprint: c.fingerprint, pem: c.pem)
        }
    }
}

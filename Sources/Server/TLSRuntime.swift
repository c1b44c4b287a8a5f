#if canImport(Glibc)
import Glibc
#endif
import ACME
import Config
import IOCore
import TLS

/// Process-wide TLS state that outlives config reloads: the session-ticket key ring (so
/// resumption survives a reload) and the local CA (`tls internal`).
package enum TLSRuntime {
    /// One ticket key ring for the process (rotated every 12 h, previous key still accepted).
    package static let ticketKeys = TicketKeyRing()

    nonisolated(unsafe) private static var ca: LocalCA?
    private static let lock = Mutex()

    /// The local CA under `<data directory>/pki/authorities/local` (created on first use;
    /// reopened when `storage` moves the data directory).
    package static func localCA() throws(TLSError) -> LocalCA {
        let directory = DataDirectory.root + "/pki/authorities/local"
        lock.lock()
        defer { lock.unlock() }
        if let c = ca, c.directory == directory { return c }
        let c = try LocalCA(directory: directory)
        ca = c
        if c.createdRoot {
            Log.info("pki.ca.local", "created a new local certificate authority", [("root", .string(c.rootCertificatePath))])
        }
        return c
    }

    /// ALPN protocols, in preference order, for a listener speaking `protocols`.
    package static func alpn(for protocols: [HTTPProtocolName]) -> [ApplicationProtocol] {
        var out: [ApplicationProtocol] = []
        if protocols.contains(.h2) { out.append(.h2) }
        if protocols.contains(.h1) { out.append(.http11) }
        return out
    }

    /// Loads or issues every certificate a server needs. ACME names get what memory or storage
    /// has now (possibly nothing); `acme` lists them for `ACMERuntime.activate`.
    package static func certificates(for tls: ServerTLSConfig) throws(ConfigError)
        -> (source: CertificateSource, internalNames: [[String]], acme: [ManagedCertificate])
    {
        var certs: [TLSCertificate] = []
        var internalNames: [[String]] = []
        var acme: [ManagedCertificate] = []
        for spec in tls.certificates {
            switch spec.source {
            case .files(let cert, let key):
                do {
                    certs.append(try TLSCertificate(certificateFile: cert, keyFile: key))
                } catch {
                    throw ConfigError("loading certificate \(cert) with key \(key): \(error)")
                }
            case .internalCA:
                do {
                    let ca = try localCA()
                    certs.append(try ca.issue(names: spec.names))
                    internalNames.append(spec.names)
                } catch {
                    throw ConfigError("issuing a local-CA certificate for \(spec.names.joined(separator: ", ")): \(error)")
                }
            case .acme(let issuer):
                let prepared = try ACMERuntime.prepare(names: spec.names, issuer: issuer)
                acme += prepared.subjects
                certs += prepared.ready
            }
        }
        return (CertificateSource(CertificateStore(certs, defaultServerName: tls.defaultSNI)), internalNames, acme)
    }

    /// A server TLS context for one listener protocol set.
    package static func context(source: CertificateSource, protocols: [HTTPProtocolName], tls: ServerTLSConfig) throws(ConfigError) -> TLSContext {
        var cfg = TLSServerConfiguration(certificates: source, ticketKeys: ticketKeys)
        cfg.applicationProtocols = alpn(for: protocols)
        if cfg.applicationProtocols.isEmpty {
            throw ConfigError("an HTTPS listener needs protocol h1 or h2 (got \(protocols.map(\.rawValue).joined(separator: " ")))")
        }
        if let wanted = tls.alpn {
            // `tls { alpn }`: the user's order, limited to what this listener speaks.
            let speaks = cfg.applicationProtocols
            cfg.applicationProtocols = wanted.map { ApplicationProtocol($0) }.filter { speaks.contains($0) }
            if cfg.applicationProtocols.isEmpty {
                throw ConfigError("tls alpn \(wanted.joined(separator: " ")): none of these is spoken by a listener with protocols \(protocols.map(\.rawValue).joined(separator: " ")) (Berth serves h2 and http/1.1)")
            }
        }
        if tls.minimumVersion == "tls1.3" { cfg.minimumVersion = .tls13 }
        if tls.maximumVersion == "tls1.2" { cfg.maximumVersion = .tls12 }
        if let c = tls.ciphers { cfg.tls12Ciphers = c.joined(separator: ":") }
        if let c = tls.curves { cfg.keyExchangeGroups = c.joined(separator: ":") }
        for p in tls.clientAuth { cfg.clientAuthPolicies.append(try clientAuthPolicy(p)) }
        // TLS-ALPN-01 (RFC 8737) for this server's ACME names, answered in the handshake.
        if tls.certificates.contains(where: { if case .acme = $0.source { true } else { false } }) {
            cfg.acmeChallengeCertificates = ACMERuntime.challenges.tlsALPN01
        }
        do {
            return try TLSContext(server: cfg)
        } catch {
            throw ConfigError("creating TLS context: \(error)")
        }
    }
}

extension TLSRuntime {
    /// Reads a site's `client_auth` certificates (base64 DER and PEM files, like Caddy's
    /// `convertPEMFilesToDER`) into a policy; errors name the Caddyfile line.
    static func clientAuthPolicy(_ p: ClientAuthPolicySpec) throws(ConfigError) -> TLSClientAuthPolicy {
        let s = p.spec
        func base64(_ list: [String], _ what: String) throws(ConfigError) -> [[UInt8]] {
            var out: [[UInt8]] = []
            for b in list {
                guard let der = Base64.decode(b, paddingRequired: false), !der.isEmpty else {
                    throw ConfigError("client_auth \(what): not valid base64: \(b.prefix(20))…", at: s.location)
                }
                out.append(der)
            }
            return out
        }
        func files(_ list: [String], _ what: String) throws(ConfigError) -> [[UInt8]] {
            var out: [[UInt8]] = []
            for f in list {
                do {
                    let pem = try FileIO.readAll(f, limit: 4 << 20)
                    out += try TLSClientAuthPolicy.derCertificates(pem: pem, what: "CERTIFICATE in \(f)")
                } catch {
                    throw ConfigError("client_auth \(what) \(f): \(error)", at: s.location)
                }
            }
            return out
        }
        let cas = try base64(s.trustedCACerts, "trusted_ca_cert") + files(s.trustedCACertFiles, "trusted_ca_cert_file")
        let leaves = try base64(s.trustedLeafCerts, "trusted_leaf_cert") + files(s.trustedLeafCertFiles, "trusted_leaf_cert_file")
        do {
            return try TLSClientAuthPolicy(
                mode: s.mode.flatMap { TLSClientAuthMode(rawValue: $0) }, serverNames: p.names, trustedCAs: cas,
                trustedLeaves: leaves)
        } catch {
            throw ConfigError("client_auth: \(error)", at: s.location)
        }
    }
}

/// A plain pthread mutex (cold paths).
final class Mutex: @unchecked Sendable {
    private var m = pthread_mutex_t()
    init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    func lock() { pthread_mutex_lock(&m) }
    func unlock() { pthread_mutex_unlock(&m) }
}

/// An immutable index of certificates by name: what the SNI callback consults.
///
/// Lookup order for a server name (RFC 6066 §3 `host_name`, compared case-insensitively and
/// without a trailing dot): exact DNS name, then a `*.` wildcard that covers exactly one
/// left-most label (RFC 6125 §6.4.3: `*.example.com` matches `a.example.com`, not
/// `example.com` nor `a.b.example.com`), then the default certificate. With no SNI (clients
/// never send IP literals, RFC 6066 §3), the local IP address of the connection is tried
/// against IP SANs first, as certmagic does, then the default.
///
/// Unlike Caddy, which aborts the handshake with `internal_error` for an unknown or missing
/// SNI, Berth serves the default: the one named by `default_sni`, else the first certificate.
package final class CertificateStore: Sendable {
    /// Every certificate, in the order given.
    package let certificates: [TLSCertificate]
    /// Served when nothing matches; nil only for an empty store.
    package let defaultCertificate: TLSCertificate?
    /// The `default_sni` name, if one was set.
    package let defaultServerName: String?

    private let exact: [String: TLSCertificate]
    private let wildcard: [String: TLSCertificate]
    private let ip: [String: TLSCertificate]

    /// Indexes `certificates`; when two certificates claim the same name the later one wins
    /// (so a renewal appended to the list shadows the certificate it replaces).
    package init(_ certificates: [TLSCertificate], defaultServerName: String? = nil) {
        self.certificates = certificates
        var exact: [String: TLSCertificate] = [:]
        var wildcard: [String: TLSCertificate] = [:]
        var ip: [String: TLSCertificate] = [:]
        for cert in certificates {
            for name in cert.dnsNames {
                let n = CertificateStore.normalize(name)
                if n.hasPrefix("*.") {
                    wildcard[String(n.dropFirst(2))] = cert
                } else {
                    exact[n] = cert
                }
            }
            for a in cert.ipAddresses { ip[a] = cert }
        }
        self.exact = exact
        self.wildcard = wildcard
        self.ip = ip
        self.defaultServerName = defaultServerName
        var def: TLSCertificate?
        if let d = defaultServerName {
            let n = CertificateStore.normalize(d)
            def =
                exact[n] ?? CertificateStore.wildcardMatch(n, in: wildcard)
                ?? IPAddress.canonical(d).flatMap { ip[$0] }
        }
        self.defaultCertificate = def ?? certificates.first
    }

    /// An empty store: every handshake fails with `internal_error` (as Caddy does while a
    /// certificate is still being obtained).
    package static let empty = CertificateStore([])

    /// The certificate for a handshake: see the type's documentation for the order.
    package func certificate(forServerName serverName: String?, localAddress: String? = nil) -> TLSCertificate? {
        if let serverName, !serverName.isEmpty {
            if let c = match(serverName) { return c }
        } else if let localAddress, !ip.isEmpty, let a = IPAddress.canonical(localAddress), let c = ip[a] {
            return c
        }
        return defaultCertificate
    }

    /// The certificate whose names cover `serverName` exactly or by wildcard; no default.
    package func match(_ serverName: String) -> TLSCertificate? {
        let n = CertificateStore.normalize(serverName)
        if let c = exact[n] { return c }
        if let c = CertificateStore.wildcardMatch(n, in: wildcard) { return c }
        if !ip.isEmpty, let a = IPAddress.canonical(serverName), let c = ip[a] { return c }
        return nil
    }

    /// A new store with `certificate` added; certificates all of whose names it covers are
    /// dropped (the renewal case), everything else is kept. The default name is kept.
    package func adding(_ certificate: TLSCertificate) -> CertificateStore {
        let covered = Set(certificate.names)
        let kept = certificates.filter { !Set($0.names).isSubset(of: covered) }
        return CertificateStore(kept + [certificate], defaultServerName: defaultServerName)
    }

    /// A new store without `certificate`.
    package func removing(_ certificate: TLSCertificate) -> CertificateStore {
        CertificateStore(certificates.filter { $0 !== certificate }, defaultServerName: defaultServerName)
    }

    /// Lower-cased ASCII without a trailing dot.
    static func normalize(_ name: String) -> String {
        var s = name.lowercased()
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    private static func wildcardMatch(_ n: String, in wildcard: [String: TLSCertificate]) -> TLSCertificate? {
        guard !wildcard.isEmpty, let dot = n.firstIndex(of: "."), dot != n.startIndex else { return nil }
        return wildcard[String(n[n.index(after: dot)...])]
    }
}

/// The live certificate snapshot: a reference to an immutable `CertificateStore` that can be
/// replaced atomically while handshakes run (ACME renewals, `tls internal` re-issues).
///
/// One source may back several `TLSContext`s (one per listener), so a single `replace` updates
/// every listener. Handshakes that already picked a certificate keep it.
package final class CertificateSource: @unchecked Sendable {
    private let lock = PThreadLock()
    private var store: CertificateStore

    package init(_ store: CertificateStore) {
        self.store = store
    }

    /// Convenience: a source over `CertificateStore(certificates, defaultServerName:)`.
    package convenience init(_ certificates: [TLSCertificate], defaultServerName: String? = nil) {
        self.init(CertificateStore(certificates, defaultServerName: defaultServerName))
    }

    /// The current snapshot.
    package var current: CertificateStore {
        lock.withLock { store }
    }

    /// Swaps in a new snapshot.
    package func replace(with newStore: CertificateStore) {
        let old = lock.withLock { () -> CertificateStore in
            let o = store
            store = newStore
            return o
        }
        _ = old  // released outside the lock
    }

    /// Atomically derives the next snapshot from the current one, e.g.
    /// `source.update { $0.adding(renewed) }`.
    package func update(_ body: (CertificateStore) -> CertificateStore) {
        lock.withLock { store = body(store) }
    }
}
